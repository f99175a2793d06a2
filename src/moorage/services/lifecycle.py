"""Lifecycle policies: Put/Get/DeleteLifecyclePolicy, previews, and the runs that expire images.

One evaluation path serves the preview and the run (shared reference §5.4): read the policy
and the repository's candidates (``LifecycleRecords.lifecycle_candidates``) in one read
transaction, then :func:`plan` them with ``moorage.domain.lifecycle.evaluate`` at one instant.
A preview stores the plan; a run deletes the images the plan expires, by digest, through
``ImageService.batch_delete`` (BatchDeleteImage's own path, so an image an index lists is
refused there too), then records what it did in the audit trail and the policy's
``last_evaluated_at``, in one transaction.

Previews run as jobs (kind :data:`PREVIEW_JOB`, on the job runner of ``moorage serve`` or
``moorage worker``): :meth:`LifecycleService.start_preview` records an ``IN_PROGRESS`` preview
and enqueues its job in one transaction; the job completes it (``COMPLETE``, or ``FAILED``
when the evaluation raised). A preview still in progress after :data:`PREVIEW_STALE_AFTER`
(its job lost for good) no longer blocks a new start. Scheduled runs are jobs of kind
:data:`RUN_JOB` over every repository with a policy.

moorage decisions:

- ``transition`` decisions (archive storage) appear in previews, as ECR would report them, and
  are ignored by runs: there is no archive storage class here yet.
- A dry run evaluates and records its audit entry (each image ``deleted=False``) but leaves
  ``last_evaluated_at`` alone: nothing was applied.
- Putting a policy resets ``last_evaluated_at`` (the new text has not been evaluated).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from moorage.domain.digests import Digest, is_digest
from moorage.domain.errors import (
    LifecyclePolicyInvalid,
    LifecyclePolicyNotFound,
    LifecyclePolicyPreviewInProgress,
    LifecyclePolicyPreviewNotFound,
    RepositoryNotFound,
)
from moorage.domain.jobs import Job
from moorage.domain.lifecycle import (
    ActionType,
    Candidate,
    StorageClass,
    evaluate,
    parse_lifecycle_policy,
)
from moorage.domain.models import Repository
from moorage.domain.names import RepositoryName
from moorage.ports.clock import Clock
from moorage.ports.lifecycle import (
    LifecyclePolicyRecord,
    LifecyclePreview,
    LifecycleRun,
    PreviewResult,
    PreviewStatus,
    RunImage,
)
from moorage.ports.metadata import MetadataStore, MetadataTransaction
from moorage.services.images import MAX_BATCH_IDS, ImageId, ImageService
from moorage.services.repositories import require

log = logging.getLogger("moorage.lifecycle")

PREVIEW_JOB = "lifecycle.preview"
RUN_JOB = "lifecycle.run"
RUN_SCHEDULE = "lifecycle"
# A preview whose job has not finished it by then was lost; a new start may replace it.
PREVIEW_STALE_AFTER = timedelta(minutes=15)
# The scheduled run forgets audit entries older than this.
AUDIT_RETENTION = timedelta(days=90)


@dataclass(frozen=True, slots=True)
class PreviewPage:
    """GetLifecyclePolicyPreview's answer: the preview, one page of its results (``after``:
    the cursor of the next page, None for the last) and the totals of every result."""

    preview: LifecyclePreview
    results: list[PreviewResult]
    after: str | None
    expiring: int
    transitioning: dict[StorageClass, int]


def plan(text: str, candidates: Sequence[Candidate], now: datetime) -> list[PreviewResult]:
    """What the policy ``text`` does to ``candidates`` at ``now``: the evaluator's decisions,
    with each image's tags and push time, in the evaluator's order (rule priority, digest).
    Raises LifecyclePolicyInvalid."""
    policy = parse_lifecycle_policy(text)
    by_digest = {candidate.digest: candidate for candidate in candidates}
    results = []
    for decision in evaluate(policy, candidates, now):
        image = by_digest[decision.digest]
        results.append(
            PreviewResult(
                digest=decision.digest,
                tags=tuple(sorted(image.tags)),
                pushed_at=image.pushed_at,
                rule_priority=decision.rule_priority,
                action=decision.action.type,
                target_storage_class=decision.action.target_storage_class,
            )
        )
    return results


class LifecycleService:
    def __init__(self, metadata: MetadataStore, images: ImageService, clock: Clock) -> None:
        self._metadata = metadata
        self._images = images
        self._clock = clock

    # -- policies -----------------------------------------------------------------------

    async def put_policy(self, registry_id: str, name: str, text: str) -> LifecyclePolicyRecord:
        """PutLifecyclePolicy. Raises RepositoryNotFound, LifecyclePolicyInvalid."""
        valid = RepositoryName(name)
        parse_lifecycle_policy(text)
        async with self._metadata.transaction() as tx:
            repository = await require(tx, registry_id, valid)
            return await tx.put_lifecycle_policy(repository.id, text, self._clock())

    async def get_policy(self, registry_id: str, name: str) -> LifecyclePolicyRecord:
        """GetLifecyclePolicy. Raises RepositoryNotFound, LifecyclePolicyNotFound."""
        valid = RepositoryName(name)
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, valid)
            record = await tx.get_lifecycle_policy(repository.id)
        if record is None:
            raise _policy_not_found(registry_id, valid)
        return record

    async def delete_policy(self, registry_id: str, name: str) -> LifecyclePolicyRecord:
        """DeleteLifecyclePolicy: the policy as it was. Raises RepositoryNotFound,
        LifecyclePolicyNotFound."""
        valid = RepositoryName(name)
        async with self._metadata.transaction() as tx:
            repository = await require(tx, registry_id, valid)
            record = await tx.delete_lifecycle_policy(repository.id)
        if record is None:
            raise _policy_not_found(registry_id, valid)
        return record

    # -- previews -----------------------------------------------------------------------

    async def start_preview(
        self, registry_id: str, name: str, text: str | None = None
    ) -> LifecyclePreview:
        """StartLifecyclePolicyPreview: record an ``IN_PROGRESS`` preview of ``text`` (default:
        the repository's policy) and enqueue the job that completes it. Raises
        RepositoryNotFound, LifecyclePolicyInvalid, LifecyclePolicyNotFound,
        LifecyclePolicyPreviewInProgress."""
        valid = RepositoryName(name)
        if text is not None:
            parse_lifecycle_policy(text)
        async with self._metadata.transaction() as tx:
            repository = await require(tx, registry_id, valid)
            if text is None:
                record = await tx.get_lifecycle_policy(repository.id)
                if record is None:
                    raise _policy_not_found(registry_id, valid)
                text = record.text
            now = self._clock()
            preview = await tx.start_lifecycle_preview(
                repository.id, text, now, stale_before=now - PREVIEW_STALE_AFTER
            )
            if preview is None:
                raise LifecyclePolicyPreviewInProgress(
                    "Previous lifecycle policy preview request has not been completed for the "
                    f"repository with name '{valid}' in the registry with id '{registry_id}'"
                )
            payload = {"repository_id": repository.id, "started_at": now.isoformat()}
            await tx.enqueue_job(PREVIEW_JOB, payload, now)
        return preview

    async def complete_preview(self, repository_id: int, started_at: datetime) -> bool:
        """Evaluate the preview started at ``started_at`` and store its results; False when
        that preview is no longer the repository's, or no longer in progress. Idempotent."""
        async with self._metadata.read() as tx:
            preview = await tx.get_lifecycle_preview(repository_id)
            if (
                preview is None
                or preview.started_at != started_at
                or preview.status is not PreviewStatus.IN_PROGRESS
            ):
                return False
            candidates = await tx.lifecycle_candidates(repository_id)
        now = self._clock()
        status = PreviewStatus.COMPLETE
        results: list[PreviewResult] = []
        try:
            results = plan(preview.text, candidates, now)
        except Exception:
            log.exception("lifecycle preview of repository %d failed", repository_id)
            status = PreviewStatus.FAILED
        async with self._metadata.transaction() as tx:
            return await tx.finish_lifecycle_preview(
                repository_id, started_at, status, results, self._clock()
            )

    async def handle_preview_job(self, job: Job, _progress: object = None) -> None:
        """The job runner's handler for :data:`PREVIEW_JOB`."""
        started_at = datetime.fromisoformat(str(job.payload["started_at"]))
        await self.complete_preview(int(job.payload["repository_id"]), started_at)

    async def get_preview(
        self,
        registry_id: str,
        name: str,
        *,
        image_ids: Sequence[ImageId] | None = None,
        tagged: bool | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> PreviewPage:
        """GetLifecyclePolicyPreview: the current preview and a page of its results (all the
        results naming ``image_ids`` when given, unpaged). Raises RepositoryNotFound,
        LifecyclePolicyPreviewNotFound, InvalidDigest (a malformed cursor)."""
        valid = RepositoryName(name)
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, valid)
            preview = await tx.get_lifecycle_preview(repository.id)
            if preview is None:
                raise LifecyclePolicyPreviewNotFound(
                    "There is no lifecycle policy preview for the repository with name "
                    f"'{valid}' in the registry with id '{registry_id}'"
                )
            counts = await tx.count_lifecycle_preview_results(repository.id)
            if image_ids is not None:
                results = await _named_results(tx, repository, image_ids, tagged)
                next_after = None
            else:
                cursor = None if after is None else Digest.parse(after)
                page = await tx.list_lifecycle_preview_results(
                    repository.id, tagged=tagged, after=cursor, limit=limit + 1
                )
                results = page[:limit]
                next_after = str(results[-1].digest) if len(page) > limit else None
        transitioning: dict[StorageClass, int] = {}
        for (action, target), count in counts.items():
            if action is ActionType.TRANSITION and target is not None:
                transitioning[target] = transitioning.get(target, 0) + count
        return PreviewPage(
            preview=preview,
            results=results,
            after=next_after,
            expiring=sum(n for (action, _), n in counts.items() if action is ActionType.EXPIRE),
            transitioning=transitioning,
        )

    # -- runs ---------------------------------------------------------------------------

    async def run(
        self,
        *,
        registry_id: str | None = None,
        repository: str | None = None,
        dry_run: bool = False,
        on_run: Callable[[LifecycleRun], None] | None = None,
    ) -> list[LifecycleRun]:
        """Evaluate the policy of every repository that has one (optionally only those of
        ``registry_id`` and/or named ``repository``) and expire what it decides, unless
        ``dry_run``. Returns the audit records, in the order run; ``on_run`` sees each as
        soon as it is recorded. A repository deleted meanwhile is skipped."""
        async with self._metadata.read() as tx:
            targets = await tx.list_lifecycle_policies(registry_id=registry_id, name=repository)
        runs = []
        for target, _ in targets:
            recorded = await self._run_one(target, dry_run=dry_run)
            if recorded is None:
                continue
            runs.append(recorded)
            if on_run is not None:
                on_run(recorded)
        return runs

    async def handle_run_job(self, job: Job, _progress: object = None) -> None:
        """The job runner's handler for :data:`RUN_JOB` (the schedule): every repository, then
        forget audit entries older than :data:`AUDIT_RETENTION`. Idempotent: a second run
        finds nothing more to expire."""
        runs = await self.run(dry_run=bool(job.payload.get("dry_run", False)))
        expired = sum(1 for run in runs for image in run.images if image.deleted)
        log.info("lifecycle: %d repositories evaluated, %d images expired", len(runs), expired)
        async with self._metadata.transaction() as tx:
            await tx.delete_lifecycle_runs(self._clock() - AUDIT_RETENTION)

    async def _run_one(self, repository: Repository, *, dry_run: bool) -> LifecycleRun | None:
        started = self._clock()
        async with self._metadata.read() as tx:
            record = await tx.get_lifecycle_policy(repository.id)
            candidates = await tx.lifecycle_candidates(repository.id)
        if record is None:
            return None  # deleted since it was listed
        try:
            planned = plan(record.text, candidates, started)
        except LifecyclePolicyInvalid:
            # Valid when put; only a stricter parser can refuse it now. Keep the images.
            log.exception("lifecycle: the policy of %s no longer parses", repository.name)
            return None
        expiring = [result for result in planned if result.action is ActionType.EXPIRE]
        deleted: set[str] = set()
        if not dry_run:
            try:
                deleted = await self._delete(repository, expiring)
            except RepositoryNotFound:
                return None
        images = tuple(
            RunImage(
                digest=result.digest,
                tags=result.tags,
                rule_priority=result.rule_priority,
                action=result.action,
                dry_run=dry_run,
                deleted=str(result.digest) in deleted,
            )
            for result in expiring
        )
        async with self._metadata.transaction() as tx:
            finished = self._clock()
            recorded = await tx.record_lifecycle_run(
                LifecycleRun(
                    registry_id=repository.registry_id,
                    repository_name=repository.name,
                    policy_text=record.text,
                    dry_run=dry_run,
                    started_at=started,
                    finished_at=finished,
                    images=images,
                )
            )
            if not dry_run:
                await tx.mark_lifecycle_evaluated(repository.id, record.text, finished)
        return recorded

    async def _delete(self, repository: Repository, expiring: list[PreviewResult]) -> set[str]:
        """Delete by digest, BatchDeleteImage's way, a batch per transaction; the digests
        deleted. Raises RepositoryNotFound when the repository went away."""
        deleted: set[str] = set()
        for start in range(0, len(expiring), MAX_BATCH_IDS):
            batch = expiring[start : start + MAX_BATCH_IDS]
            result = await self._images.batch_delete(
                repository.registry_id,
                repository.name,
                [ImageId(digest=str(result.digest)) for result in batch],
            )
            deleted.update(image_id.digest for image_id in result.deleted if image_id.digest)
            for failure in result.failures:
                log.info(
                    "lifecycle: %s@%s kept: %s",
                    repository.name,
                    failure.image_id.digest,
                    failure.reason,
                )
        return deleted


async def _named_results(
    records: MetadataTransaction,
    repository: Repository,
    image_ids: Sequence[ImageId],
    tagged: bool | None,
) -> list[PreviewResult]:
    """The results naming any of ``image_ids`` (by digest, or by a tag the image carried when
    the preview ran); a malformed digest names nothing."""
    digests = [Digest.parse(i.digest) for i in image_ids if i.digest and is_digest(i.digest)]
    wanted_tags = {i.tag for i in image_ids if i.tag}
    found = {
        str(result.digest): result
        for result in await records.list_lifecycle_preview_results(
            repository.id, digests=digests, tagged=tagged
        )
    }
    if wanted_tags and tagged is not False:  # an image found by a tag is tagged
        for result in await records.list_lifecycle_preview_results(repository.id, tagged=True):
            if wanted_tags.intersection(result.tags):
                found.setdefault(str(result.digest), result)
    return [found[digest] for digest in sorted(found)]


def _policy_not_found(registry_id: str, name: str) -> LifecyclePolicyNotFound:
    return LifecyclePolicyNotFound(
        f"Lifecycle policy does not exist for the repository with name '{name}' in the "
        f"registry with id '{registry_id}'"
    )
