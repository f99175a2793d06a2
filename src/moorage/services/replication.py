"""Replication: ECR's cross-Region and cross-account copies of every image pushed.

The pipeline (shared reference §7; docs/replication.md)::

    push (a new manifest, or a tag moved onto one) in repository R of registry (account, region)
      -> on_push, in the push's transaction: for each destination of the configuration's
         rules that match R, an image_replications row IN_PROGRESS and a ``replicate`` job
         (the outbox: both commit with the push, or neither does)
      -> the job (handle_job), on the durable runner, once per (push event, destination):
           the destination's registry policy must grant the source account
           ecr:ReplicateImage on the repository (ecr:CreateRepository too when it must be
           created), unless source and destination are one account;
           the repository is created when missing (ECR's defaults: mutable tags, AES256,
           no policies, scanning as the destination's registry configuration says);
           blobs first, then an index's children, then the manifest, then its referrers
           (signatures, SBOMs); the tag last, and only if no copy of a later push set it
           (``Replica.pushed_at``; a late old copy never rolls a tag back);
      -> COMPLETE, or FAILED with a failureCode (``domain.replication.FailureCode``): at
         once for a refusal that retrying cannot mend, after the job's last attempt for
         anything else.

What a replica stores does not replicate again (``Push.replica``): one hop, never chained,
and a pair of registries replicating to each other never ping-pongs.

Destinations: a ``(region, registryId)`` that this deployment serves is written here, through
that region's services (:class:`LocalSite`). A region no site is known for fails with
DESTINATION_UNREACHABLE. Only content pushed after a rule exists replicates.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from moorage.domain.creation_templates import AppliedFor
from moorage.domain.digests import Digest
from moorage.domain.errors import (
    AccessDenied,
    BlobUnknown,
    RegistryError,
    RepositoryNotFound,
)
from moorage.domain.jobs import Job
from moorage.domain.manifests import ParsedManifest, parse_manifest
from moorage.domain.models import ManifestRecord, Repository
from moorage.domain.names import RepositoryName, Tag
from moorage.domain.replication import (
    EMPTY_CONFIGURATION,
    PUSHED_AT_HEADER,
    Destination,
    FailureCode,
    ReplicationConfiguration,
    ReplicationStatus,
    check_configuration,
)
from moorage.iam.actions import account_root_arn
from moorage.ports.access import AccessRequest, Authorizer, Credentials, Principal
from moorage.ports.blobs import BlobStore
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore, MetadataTransaction
from moorage.ports.replication import ImageReplication
from moorage.ports.upstream import (
    RegistryPusher,
    UpstreamError,
    UpstreamRefused,
    UpstreamUnreachable,
)
from moorage.services.images import (
    Deletion,
    ImageId,
    ImageService,
    Push,
    Reference,
    Replica,
    find_image,
)
from moorage.services.repositories import RepositoryService, require

log = logging.getLogger("moorage.replication")

T = TypeVar("T")

REPLICATE_JOB = "replicate"
REPLICATE_DELETE_JOB = "replicate-delete"

# An index lists its children, which may be indexes too; the copy follows at most this
# depth (the OCI spec sets none; real images nest one level, attestations two).
MAX_INDEX_DEPTH = 4
# Referrers copied with one subject (signatures, SBOMs, attestations: a handful in practice).
MAX_REFERRERS = 256


@dataclass(frozen=True)
class LocalSite:
    """A registry (one region of this deployment) that replicas are written into."""

    region: str
    metadata: MetadataStore
    repositories: RepositoryService
    images: ImageService
    authorizer: Authorizer


@dataclass(frozen=True)
class RemoteSite:
    """Another deployment serving a destination region: ``pusher(source account,
    destination)`` gives a client that writes there as that account's replication."""

    url: str
    pusher: Callable[[str, Destination], RegistryPusher]


class ReplicationRefused(Exception):
    """The destination will not take the copy, and retrying will not change that."""

    def __init__(self, code: FailureCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class ReplicationService:
    """The replication of one region's registries (``metadata`` acts in ``region``)."""

    def __init__(
        self,
        metadata: MetadataStore,
        images: ImageService,
        clock: Clock,
        *,
        region: str,
        site: Callable[[str], LocalSite | None],
        remote: Callable[[str], RemoteSite | None] = lambda region: None,
        blob_store: BlobStore | None = None,
    ) -> None:
        """``site(region)``: the region of this deployment a destination in ``region`` is
        written to (None: not served here); ``remote(region)``: else, the peer deployment
        serving it (None: none is named), whose copies read their blobs from ``blob_store``."""
        self._metadata = metadata
        self._images = images
        self._clock = clock
        self._region = region
        self._site = site
        self._remote = remote
        self._blob_store = blob_store

    # -- configuration ------------------------------------------------------------------

    async def get_configuration(self, registry_id: str) -> ReplicationConfiguration:
        async with self._metadata.read() as tx:
            config = await tx.get_replication_configuration(registry_id)
        return config or EMPTY_CONFIGURATION

    async def put_configuration(
        self, registry_id: str, config: ReplicationConfiguration
    ) -> ReplicationConfiguration:
        """Replace the configuration (an empty one turns replication off). Raises
        InvalidParameter past ECR's quotas or for a destination that is the source itself."""
        check_configuration(config, source=Destination(self._region, registry_id))
        async with self._metadata.transaction() as tx:
            await tx.put_replication_configuration(registry_id, config, self._clock())
        return config

    # -- status -------------------------------------------------------------------------

    async def statuses(
        self, registry_id: str, name: str, image_id: ImageId
    ) -> tuple[ManifestRecord, list[ImageReplication]]:
        """DescribeImageReplicationStatus. Raises RepositoryNotFound, ManifestUnknown."""
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            record = await find_image(tx, repository.id, image_id, registry_id, name)
            return record, await tx.image_replications(repository.id, record.digest)

    # -- the push hook ------------------------------------------------------------------

    async def on_push(self, tx: MetadataTransaction, push: Push) -> None:
        """The push hook (``ImageService.add_push_hook``): a job per destination of the
        rules matching the repository. A replica's push is not replicated again."""
        if push.replica is not None:
            return
        repository = push.repository
        config = await tx.get_replication_configuration(repository.registry_id)
        if config is None:
            return
        destinations = config.destinations_for(repository.name)
        if not destinations:
            return
        # Taken after the tag was written: concurrent pushes of one tag wait for each
        # other's row lock there, so this orders them as their commits order the tag.
        pushed_at = self._clock()
        for destination in sorted(destinations):
            await tx.set_image_replication(
                repository.id,
                push.manifest.digest,
                destination,
                ReplicationStatus.IN_PROGRESS,
                push.at,
            )
            payload: dict[str, Any] = {
                "region": self._region,
                "registry_id": repository.registry_id,
                "repository": repository.name,
                "digest": str(push.manifest.digest),
                "pushed_at": pushed_at.isoformat(),
                "destination": {
                    "region": destination.region,
                    "registry_id": destination.registry_id,
                },
            }
            if push.tag is not None and push.tag_changed:
                payload["tag"] = push.tag
            # One job per push event, never deduplicated: a pending copy of an older push of
            # the same digest and tag carries an older push time, and must not stand in for
            # this one (its tag would lose to a copy in between).
            await tx.enqueue_job(REPLICATE_JOB, payload, push.at)

    async def on_delete(self, tx: MetadataTransaction, deletion: Deletion) -> None:
        """The delete hook (``ImageService.add_delete_hook``): a job per destination of the
        matching rules that set ``deleteReplication``; nothing for the others (ECR replicates
        deletions only when asked to). A replicated deletion goes no further."""
        if deletion.replica:
            return
        repository = deletion.repository
        config = await tx.get_replication_configuration(repository.registry_id)
        if config is None:
            return
        removals = [
            {"digest": str(r.digest), **({"tag": r.tag} if r.tag is not None else {})}
            for r in deletion.removed
        ]
        for destination, deletes in sorted(config.destinations_for(repository.name).items()):
            if not deletes:
                continue
            await tx.enqueue_job(
                REPLICATE_DELETE_JOB,
                {
                    "region": self._region,
                    "registry_id": repository.registry_id,
                    "repository": repository.name,
                    "removals": removals,
                    "destination": {
                        "region": destination.region,
                        "registry_id": destination.registry_id,
                    },
                },
                deletion.at,
            )

    async def handle_delete_job(self, job: Job, progress: Callable[..., Any]) -> None:
        """Delete at one destination what a deletion removed here: an image by digest, or a
        tag by name (the image going with its last tag, as here). What the destination does
        not have is skipped; a destination that refuses (its registry policy does not grant
        the source account ecr:ReplicateImage) is logged and left as it is."""
        payload = job.payload
        destination = Destination(
            str(payload["destination"]["region"]), str(payload["destination"]["registry_id"])
        )
        registry_id, name = str(payload["registry_id"]), str(payload["repository"])
        site = self._site(destination.region)
        if site is None:
            remote = self._remote(destination.region)
            if remote is None:
                log.warning("deletion not replicated to %s: no registry serves it", destination)
                return
            await self._delete_remote(payload, registry_id, name, destination, remote)
            return
        async with site.metadata.read() as tx:
            present = await tx.get_repository(destination.registry_id, name)
        if present is None:
            return
        if destination.registry_id != registry_id:
            try:
                await _authorize_source(site, registry_id, destination, name, "ecr:ReplicateImage")
            except ReplicationRefused as refused:
                log.warning("deletion not replicated to %s: %s", destination, refused)
                return
        ids = [
            ImageId(tag=str(r["tag"])) if r.get("tag") else ImageId(digest=str(r["digest"]))
            for r in payload["removals"]
        ]
        try:
            result = await site.images.batch_delete(
                destination.registry_id, name, ids, replica=True
            )
        except RepositoryNotFound:
            return
        await progress({"deleted": len(result.deleted), "absent": len(result.failures)})

    async def _delete_remote(
        self,
        payload: Mapping[str, Any],
        registry_id: str,
        name: str,
        destination: Destination,
        remote: RemoteSite,
    ) -> None:
        pusher = remote.pusher(registry_id, destination)
        try:
            for removal in payload["removals"]:
                reference = str(removal.get("tag") or removal["digest"])
                await _retrying(partial(pusher.delete_manifest, name, reference))
        except UpstreamRefused as refused:
            log.warning("deletion not replicated to %s: %s", destination, refused)
        finally:
            await pusher.close()

    # -- the job --------------------------------------------------------------------------

    async def handle_job(self, job: Job, progress: Callable[..., Any]) -> None:
        """Copy one pushed image to one destination; record COMPLETE or FAILED."""
        task = _ReplicationTask.of(job.payload)
        try:
            copied = await self._replicate(task)
        except ReplicationRefused as refused:
            log.warning(
                "replication of %s@%s to %s refused: %s",
                task.repository,
                task.digest,
                task.destination,
                refused,
            )
            await self._record(task, ReplicationStatus.FAILED, refused.code)
            return
        except Exception:
            if job.attempts >= job.max_attempts:
                await self._record(task, ReplicationStatus.FAILED, FailureCode.RETRIES_EXHAUSTED)
            raise
        await progress({"manifests": copied})
        await self._record(task, ReplicationStatus.COMPLETE, None)

    async def copy_now(
        self,
        registry_id: str,
        repository: str,
        digest: Digest,
        tag: str | None,
        pushed_at: datetime,
        destination: Destination,
    ) -> FailureCode | None:
        """Copy one image (with ``tag``) to ``destination`` now, as a push's job would, and
        record its status; the failure code when it failed (a backfill's copy: an error
        that retrying might mend counts as RETRIES_EXHAUSTED, the backfill going on)."""
        task = _ReplicationTask(
            self._region, registry_id, repository, digest, pushed_at, destination, tag
        )
        await self._record(task, ReplicationStatus.IN_PROGRESS, None)
        code: FailureCode | None = None
        try:
            await self._replicate(task)
        except ReplicationRefused as refused:
            code = refused.code
        except (UpstreamError, RegistryError) as failed:
            log.warning(
                "backfill copy of %s@%s to %s failed: %s", repository, digest, destination, failed
            )
            code = FailureCode.RETRIES_EXHAUSTED
        await self._record(
            task, ReplicationStatus.FAILED if code else ReplicationStatus.COMPLETE, code
        )
        return code

    async def _record(
        self, task: _ReplicationTask, status: ReplicationStatus, code: FailureCode | None
    ) -> None:
        async with self._metadata.transaction() as tx:
            repository = await tx.get_repository(task.registry_id, task.repository)
            if repository is None:
                return
            await tx.set_image_replication(
                repository.id,
                task.digest,
                task.destination,
                status,
                self._clock(),
                failure_code=None if code is None else code.value,
            )

    async def _replicate(self, task: _ReplicationTask) -> int:
        """The copy; how many manifests it wrote. Raises ReplicationRefused."""
        source = await self._source(task)
        site = self._site(task.destination.region)
        if site is None:
            remote = self._remote(task.destination.region)
            if remote is None:
                raise ReplicationRefused(
                    FailureCode.DESTINATION_UNREACHABLE,
                    f"no registry serving {task.destination.region} is known to this deployment",
                )
            return await self._replicate_remote(task, source, remote)
        target = await _open_target(site, task, self._clock)
        replica = Replica(task.pushed_at)
        written = 0
        for record in source.manifests:
            await target.link_blobs(parse_manifest(record.payload, record.media_type))
            if record.digest == task.digest and task.tag is not None:
                reference = Reference(tag=Tag(task.tag))
            else:
                reference = Reference(digest=record.digest)
            try:
                await site.images.put_manifest(
                    task.destination.registry_id,
                    task.repository,
                    reference,
                    record.payload,
                    record.media_type,
                    replica=replica,
                )
            except RegistryError as refused:
                if isinstance(refused, RepositoryNotFound):
                    raise  # deleted meanwhile: retry, which creates it again
                raise ReplicationRefused(FailureCode.DESTINATION_REFUSED, str(refused)) from None
            written += 1
        return written

    async def _replicate_remote(
        self, task: _ReplicationTask, source: _SourceImage, remote: RemoteSite
    ) -> int:
        """The copy to a peer deployment, over ``/v2/`` as the source account's replication:
        blobs it lacks (chunked, each chunk resumed where it broke), then the manifests, the
        tag with the source's push time. Raises ReplicationRefused for a refusal (401/403:
        ACCESS_DENIED; another 4xx: DESTINATION_REFUSED); UpstreamUnreachable after
        ``PUSH_ATTEMPTS`` tries (the job retries later)."""
        pusher = remote.pusher(task.registry_id, task.destination)
        name = task.repository
        try:
            for record in source.manifests:
                manifest = parse_manifest(record.payload, record.media_type)
                for descriptor in manifest.blob_references():
                    await _retrying(partial(self._push_blob, pusher, name, descriptor.digest))
                top = record.digest == task.digest and task.tag is not None
                reference = task.tag if top and task.tag is not None else str(record.digest)
                await _retrying(
                    partial(
                        pusher.put_manifest,
                        name,
                        reference,
                        record.payload,
                        record.media_type,
                        {PUSHED_AT_HEADER: task.pushed_at.isoformat()},
                    )
                )
        except UpstreamRefused as refused:
            denied = refused.status in (401, 403)
            code = FailureCode.ACCESS_DENIED if denied else FailureCode.DESTINATION_REFUSED
            raise ReplicationRefused(code, f"{remote.url}: {refused}") from None
        finally:
            await pusher.close()
        return len(source.manifests)

    async def _push_blob(self, pusher: RegistryPusher, name: str, digest: Digest) -> None:
        if await pusher.blob_exists(name, digest):
            return
        assert self._blob_store is not None  # wired with the remote sites
        size = await self._blob_store.stat(digest)
        if size is None:  # a fixture image's blob: never pushed here either
            return
        store = self._blob_store

        async def read(offset: int, length: int) -> bytes:
            return b"".join([chunk async for chunk in store.open(digest, offset, length)])

        await pusher.upload_blob(name, digest, size, read)

    async def _source(self, task: _ReplicationTask) -> _SourceImage:
        """The image to copy: its index children first, then itself, then its referrers.
        Raises ReplicationRefused when it is gone."""
        async with self._metadata.read() as tx:
            repository = await tx.get_repository(task.registry_id, task.repository)
            record = (
                None if repository is None else await tx.get_manifest(repository.id, task.digest)
            )
            if repository is None or record is None:
                raise ReplicationRefused(
                    FailureCode.SOURCE_IMAGE_DELETED, "the source image was deleted"
                )
            ordered: dict[Digest, ManifestRecord] = {}
            await _children_first(tx, repository, record, ordered, depth=0)
            referrers = await tx.list_referrers(repository.id, task.digest, None)
            for referrer in referrers[:MAX_REFERRERS]:
                # The listing carries no payload: the copy needs the whole record.
                whole = await tx.get_manifest(repository.id, referrer.digest)
                if whole is not None:
                    ordered.setdefault(whole.digest, whole)
        return _SourceImage(list(ordered.values()))


async def _children_first(
    tx: MetadataTransaction,
    repository: Repository,
    record: ManifestRecord,
    ordered: dict[Digest, ManifestRecord],
    *,
    depth: int,
) -> None:
    manifest = parse_manifest(record.payload, record.media_type)
    if depth < MAX_INDEX_DEPTH:
        for child in manifest.manifests:
            if child.digest in ordered:
                continue
            found = await tx.get_manifest(repository.id, child.digest)
            if found is not None:  # absent: a fixture image's child, or one GC took
                await _children_first(tx, repository, found, ordered, depth=depth + 1)
    ordered.setdefault(record.digest, record)


@dataclass(frozen=True, slots=True)
class _SourceImage:
    manifests: list[ManifestRecord]  # in the order they are written


@dataclass(frozen=True, slots=True)
class _ReplicationTask:
    region: str
    registry_id: str
    repository: str
    digest: Digest
    pushed_at: datetime
    destination: Destination
    tag: str | None

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> _ReplicationTask:
        destination = payload["destination"]
        return cls(
            region=str(payload["region"]),
            registry_id=str(payload["registry_id"]),
            repository=str(payload["repository"]),
            digest=Digest.parse(str(payload["digest"])),
            pushed_at=datetime.fromisoformat(str(payload["pushed_at"])),
            destination=Destination(str(destination["region"]), str(destination["registry_id"])),
            tag=None if payload.get("tag") is None else str(payload["tag"]),
        )


class _LocalTarget:
    """A destination repository on this deployment, authorized and present."""

    def __init__(self, site: LocalSite, repository: Repository, clock: Clock) -> None:
        self._site = site
        self._repository = repository
        self._clock = clock

    async def link_blobs(self, manifest: ParsedManifest) -> None:
        """Make the manifest's blobs usable in the destination repository: the bytes are
        this deployment's already (one content-addressed store), so only links are written.
        A blob never recorded (a fixture image's) is left for the manifest PUT to judge."""
        async with self._site.metadata.transaction() as tx:
            now = self._clock()
            for descriptor in manifest.blob_references():
                try:
                    await tx.link_blob(self._repository.id, descriptor.digest, now)
                except BlobUnknown:
                    continue


async def _open_target(site: LocalSite, task: _ReplicationTask, clock: Clock) -> _LocalTarget:
    """The destination repository, created when missing, once the destination's policies
    allow the source account to write there. Raises ReplicationRefused."""
    destination = task.destination
    async with site.metadata.read() as tx:
        repository = await tx.get_repository(destination.registry_id, task.repository)
    if destination.registry_id != task.registry_id:
        needed = ["ecr:ReplicateImage"]
        if repository is None:
            needed.append("ecr:CreateRepository")
        for action in needed:
            await _authorize_source(site, task.registry_id, destination, task.repository, action)
    if repository is None:
        repository = await site.repositories.ensure(
            destination.registry_id, task.repository, AppliedFor.REPLICATION
        )
    return _LocalTarget(site, repository, clock)


async def _authorize_source(
    site: LocalSite, source: str, destination: Destination, repository: str, action: str
) -> None:
    """The destination's policies must allow the source account (its root: ECR's
    replication acts for the account) ``action`` on the repository. Raises
    ReplicationRefused ACCESS_DENIED."""
    principal = Principal(source, arn=account_root_arn(source))
    try:
        await site.authorizer.authorize(
            AccessRequest(principal, action, destination.registry_id, repository, Credentials())
        )
    except AccessDenied as denied:
        raise ReplicationRefused(FailureCode.ACCESS_DENIED, str(denied)) from None


# Tries of one request to a peer before the attempt fails (the job then retries later).
PUSH_ATTEMPTS = 5
PUSH_BACKOFF = 0.5  # seconds, doubled each try, with jitter
MAX_RETRY_AFTER = 30.0


async def _retrying(call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, tried again when the peer is unreachable or busy: after its
    ``Retry-After`` (capped), else an exponential backoff with jitter."""
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        try:
            return await call()
        except UpstreamUnreachable as busy:
            if attempt == PUSH_ATTEMPTS:
                raise
            delay = PUSH_BACKOFF * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
            if busy.retry_after is not None:
                delay = min(busy.retry_after, MAX_RETRY_AFTER)
            log.info("peer busy or unreachable (%s); trying again in %.1f s", busy, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
