"""Replication backfills: ECR's StartReplicationBackfill and its kin (shared reference §7.3).

Replication copies only what is pushed after a rule exists; a backfill copies what was there
before, to one destination of the configuration::

    StartReplicationBackfill(destination)   PREPARING; a ``replication-backfill`` job
      -> the job: IN_PROGRESS; every repository the rules naming the destination match,
         every image there (each tag, or the digest of an untagged image that no index
         lists; an index brings its children), copied as a push's job copies it, each
         with a result COMPLETE or FAILED (and its image's replication status)
      -> COMPLETE (the results say which copies failed), or STOPPED after a stop
    StopReplicationBackfill: PREPARING or IN_PROGRESS -> STOPPING (the job stops between two
      images); otherwise ReplicationBackfillInvalidStatus.

Limits as ECR's: one backfill running per destination region (ReplicationBackfillInProgress),
at most 10 running in a registry (LimitExceeded). Finished backfills are kept 90 days.
A copy's tag moves only if no push since has set it (the tag's own time orders it, older
than any push after it), so a backfill never rolls back what live replication wrote.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from moorage.domain.digests import Digest
from moorage.domain.errors import (
    InvalidParameter,
    ReplicationBackfillInProgress,
    ReplicationBackfillInvalidStatus,
    ReplicationBackfillLimitExceeded,
    ReplicationBackfillNotFound,
)
from moorage.domain.jobs import Job
from moorage.domain.replication import Destination
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore
from moorage.ports.replication import Backfill, BackfillResult
from moorage.services.images import ImageService
from moorage.services.replication import ReplicationService

log = logging.getLogger("moorage.replication")

BACKFILL_JOB = "replication-backfill"
MAX_RUNNING = 10
RETENTION = timedelta(days=90)
RUNNING = frozenset({"PREPARING", "IN_PROGRESS", "STOPPING"})
PAGE = 100


class BackfillService:
    """The backfills of one region's registries."""

    def __init__(
        self,
        metadata: MetadataStore,
        images: ImageService,
        replication: ReplicationService,
        clock: Clock,
        *,
        region: str,
    ) -> None:
        self._metadata = metadata
        self._images = images
        self._replication = replication
        self._clock = clock
        self._region = region

    async def start(self, registry_id: str, destination: Destination) -> Backfill:
        """Raises InvalidParameter (not a destination of the configuration),
        ReplicationBackfillInProgress, ReplicationBackfillLimitExceeded."""
        now = self._clock()
        async with self._metadata.transaction() as tx:
            config = await tx.get_replication_configuration(registry_id)
            if config is None or destination not in config.all_destinations():
                raise InvalidParameter(
                    f"The destination {destination.registry_id} in {destination.region} is not "
                    "a destination of this registry's replication configuration."
                )
            await tx.delete_backfills_ended_before(registry_id, now - RETENTION)
            running = [b for b in await tx.list_backfills(registry_id, 1000) if b.status in RUNNING]
            if any(b.destination.region == destination.region for b in running):
                raise ReplicationBackfillInProgress(
                    f"A replication backfill to {destination.region} is in progress already."
                )
            if len(running) >= MAX_RUNNING:
                raise ReplicationBackfillLimitExceeded(
                    f"At most {MAX_RUNNING} replication backfills run at once in a registry."
                )
            backfill = Backfill(
                id=str(uuid.uuid4()),
                registry_id=registry_id,
                destination=destination,
                status="PREPARING",
                total=0,
                completed=0,
                failed=0,
                failure_codes=(),
                stop_requested=False,
                started_at=now,
            )
            await tx.create_backfill(backfill)
            await tx.enqueue_job(
                BACKFILL_JOB,
                {"region": self._region, "registry_id": registry_id, "backfill_id": backfill.id},
                now,
            )
        return backfill

    async def stop(self, registry_id: str, backfill_id: str) -> Backfill:
        """Raises ReplicationBackfillNotFound, ReplicationBackfillInvalidStatus."""
        async with self._metadata.transaction() as tx:
            backfill = await self._require(tx, registry_id, backfill_id)
            if backfill.status not in ("PREPARING", "IN_PROGRESS"):
                raise ReplicationBackfillInvalidStatus(
                    f"The replication backfill {backfill_id} is {backfill.status}; only one "
                    "that is PREPARING or IN_PROGRESS can be stopped."
                )
            await tx.update_backfill(backfill_id, status="STOPPING", stop_requested=True)
        return replace(backfill, status="STOPPING", stop_requested=True)

    async def get(self, registry_id: str, backfill_id: str) -> Backfill:
        async with self._metadata.read() as tx:
            return await self._require(tx, registry_id, backfill_id)

    async def results(
        self, registry_id: str, backfill_id: str, *, status: str | None, after: int, limit: int
    ) -> tuple[Backfill, list[BackfillResult]]:
        """Raises ReplicationBackfillNotFound."""
        async with self._metadata.read() as tx:
            backfill = await self._require(tx, registry_id, backfill_id)
            found = await tx.backfill_results(backfill_id, status=status, after=after, limit=limit)
        return backfill, found

    async def list_backfills(self, registry_id: str, limit: int) -> list[Backfill]:
        async with self._metadata.read() as tx:
            return await tx.list_backfills(registry_id, limit)

    async def _require(self, tx: Any, registry_id: str, backfill_id: str) -> Backfill:
        found: Backfill | None = await tx.get_backfill(registry_id, backfill_id)
        if found is None:
            raise ReplicationBackfillNotFound(
                f"The replication backfill with id '{backfill_id}' does not exist in the "
                f"registry with id '{registry_id}'."
            )
        return found

    # -- the job --------------------------------------------------------------------------

    async def handle_job(self, job: Job, progress: Callable[..., Any]) -> None:
        registry_id = str(job.payload["registry_id"])
        backfill_id = str(job.payload["backfill_id"])
        backfill = await self.get(registry_id, backfill_id)
        if backfill.status not in RUNNING:
            return  # ran to its end already (the job is run again after a lost lease)
        if backfill.stop_requested:
            await self._finish(backfill_id, "STOPPED")
            return
        async with self._metadata.transaction() as tx:
            await tx.update_backfill(backfill_id, status="IN_PROGRESS")
            config = await tx.get_replication_configuration(registry_id)
            done = {
                (r.repository, str(r.digest), r.tag)
                for r in await tx.backfill_results(backfill_id, status=None, after=0, limit=10**9)
            }
        rules = (
            []
            if config is None
            else [rule for rule in config.rules if backfill.destination in rule.destinations]
        )
        counts = {
            "total": backfill.total,
            "completed": backfill.completed,
            "failed": backfill.failed,
        }
        codes = set(backfill.failure_codes)
        seq = len(done)
        async for name, digest, tag, pushed_at in self._images_to_copy(registry_id, rules):
            if (name, str(digest), tag) in done:
                continue
            if (await self.get(registry_id, backfill_id)).stop_requested:
                await self._finish(backfill_id, "STOPPED")
                return
            code = await self._replication.copy_now(
                registry_id, name, digest, tag, pushed_at, backfill.destination
            )
            seq += 1
            counts["total"] += 1
            counts["failed" if code else "completed"] += 1
            if code:
                codes.add(code.value)
            async with self._metadata.transaction() as tx:
                await tx.add_backfill_result(
                    backfill_id,
                    BackfillResult(
                        seq,
                        name,
                        digest,
                        tag,
                        "FAILED" if code else "COMPLETE",
                        None if code is None else code.value,
                    ),
                )
                await tx.update_backfill(backfill_id, failure_codes=sorted(codes), **counts)
            await progress(dict(counts))
        await self._finish(backfill_id, "COMPLETE")

    async def _finish(self, backfill_id: str, status: str) -> None:
        async with self._metadata.transaction() as tx:
            await tx.update_backfill(backfill_id, status=status, ended_at=self._clock())

    async def _images_to_copy(self, registry_id: str, rules: list[Any]) -> Any:
        """(repository, digest, tag, pushed at) of every image to copy, repository by
        repository in name order."""
        after: str | None = None
        while True:
            async with self._metadata.read() as tx:
                repositories = await tx.list_repositories(registry_id, after=after, limit=PAGE)
            for repository in repositories:
                if not any(rule.matches(repository.name) for rule in rules):
                    continue
                async for item in self._images_of(registry_id, repository.id, repository.name):
                    yield item
            if len(repositories) < PAGE:
                return
            after = repositories[-1].name

    async def _images_of(
        self, registry_id: str, repository_id: int, name: str
    ) -> AsyncIterator[tuple[str, Digest, str | None, datetime]]:
        cursor = None
        while True:
            page = await self._images.describe(registry_id, name, after=cursor, limit=PAGE)
            digests = [d.manifest.digest for d in page.items]
            async with self._metadata.read() as tx:
                listed = await tx.manifest_parents_many(repository_id, set(digests))
                tag_times = {
                    digest: await _tag_times(tx, repository_id, digest) for digest in digests
                }
            for detail in page.items:
                digest = detail.manifest.digest
                times: Mapping[str, datetime] = tag_times[digest]
                if detail.tags:
                    for tag in detail.tags:
                        yield name, digest, tag, times.get(tag, detail.manifest.pushed_at)
                elif not listed.get(digest):
                    yield name, digest, None, detail.manifest.pushed_at
            if page.after is None:
                return
            cursor = page.after


async def _tag_times(tx: Any, repository_id: int, digest: Digest) -> dict[str, datetime]:
    times: dict[str, datetime] = {}
    for tag in await tx.tags_of(repository_id, digest):
        record = await tx.get_tag(repository_id, tag)
        if record is not None:
            times[tag] = record.updated_at
    return times
