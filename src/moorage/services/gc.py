"""Online garbage collection: free what nothing references while pushes and pulls go on.

What is garbage (docs/gc.md explains the choices):

- **Unreferenced blobs.** A blob that no manifest in *any* repository references, and that
  nobody used (uploaded, mounted or linked) for ``grace_period``. Its row goes with every
  repository link to it, then its bytes. Links are not collected one repository at a time:
  a blob still referenced elsewhere costs no storage, and a second rule for links would
  need a second lock protocol for no byte freed.
- **Orphaned referrers.** A manifest with an OCI 1.1 ``subject`` (a signature, an SBOM)
  whose subject is no manifest of its repository, that carries no tag, and that was pushed
  more than ``grace_period`` ago (ECR removes the referrers of a deleted image too). A
  referrer may legally be pushed before its subject: the grace period gives the subject
  time to arrive. A tagged referrer stays, by decision: a tag is a name a user gave
  explicitly. Each pass also frees the referrers of those the previous pass deleted (a
  signature of an SBOM of a deleted image), up to ``REFERRER_ROUNDS`` passes per run. The
  deletion restarts the grace period of the blobs they held, so those go in a later run.
- **Abandoned upload sessions.** Sessions not updated for ``upload_grace_period``, with
  their staged bytes.
- **Orphans.** Blob files no row records, and staging areas no session records, last
  written more than the respective grace period ago. A crash leaves them (an upload that
  died between publishing its bytes and recording them; a collection that died between
  deleting rows and deleting files).

The races with a push (about to reference a blob, or to tag a referrer), and how each step
is ordered:

1. A manifest PUT checks that its blobs are linked to the repository *and locks those blob
   rows* (``missing_blobs``: ``FOR KEY SHARE`` on PostgreSQL; SQLite has one writer), then
   records the manifest and its references in the same transaction.
2. Collection deletes blob rows with ``delete_unreferenced_blobs``: it first locks the rows
   still last used before the cutoff (``FOR UPDATE``: it waits for every PUT of step 1
   holding one, and re-checks ``last_used_at`` on rows a use updated meanwhile), then
   deletes those no reference names, in a statement whose snapshot is taken after the
   locks were granted. A PUT either committed before (its references are seen: the blob
   stays) or runs after (it finds the blob missing and fails with MANIFEST_BLOB_UNKNOWN;
   the client uploads again). No accepted manifest ever names a deleted blob.
3. Metadata first, bytes after its commit: collection deletes a blob's bytes only inside a
   transaction that holds ``lock_blob_files`` for the digest and sees no row for it. An
   upload records a blob it has just published under the same lock and checks that the
   bytes are still there (``services/uploads.py``), so bytes an upload relies on are never
   deleted. A crash between the two steps leaves orphan bytes, swept by a later run.
4. Referrers are deleted by ``delete_orphaned_referrers``, which locks them
   (``lock_manifests``) and re-checks, under the lock, that their subject is still missing
   and that they are still untagged: a tag pushed meanwhile either committed first (the
   referrer stays) or waits for the deletion (a manifest PUT by tag then stores the
   referrer again); a subject committed before the re-check saves it too. On PostgreSQL a
   subject committed between the re-check and the deletion's commit does not (docs/gc.md).
   The deletion is ``delete_manifests``'s: tags and references cascade, and the blobs the
   referrers held count as used (step 5).
5. Uses refresh the grace period: an upload's completion (``put_blob``), a mount or a link
   (``link_blob``), and the end of a reference: deleting a manifest (or its repository)
   refreshes the blobs it referenced, so the period starts when a blob becomes
   unreferenced, not when it was uploaded. A HEAD does not, to keep the read path free of
   writes: a client that HEADs an unreferenced blob in its last moment of grace and then
   PUTs a manifest after collection may see MANIFEST_BLOB_UNKNOWN once, and its retry
   uploads the blob.

Every step is idempotent and streams its work in batches of ``batch_size``: a run that
dies half-way is finished by the next one, and its memory does not grow with the store.
Collection never holds a transaction across the whole run, and holds the file lock (on
SQLite, the single write lock) for at most ``FILE_BATCH_SIZE`` file deletions at a time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import TypeVar

from moorage.domain.digests import Digest
from moorage.domain.errors import UploadUnknown
from moorage.domain.models import ManifestRecord, UploadSession
from moorage.ports.blobs import BlobStore
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore

log = logging.getLogger(__name__)

_T = TypeVar("_T")

DEFAULT_GRACE_PERIOD = timedelta(hours=24)
DEFAULT_UPLOAD_GRACE_PERIOD = timedelta(hours=24)
DEFAULT_BATCH_SIZE = 200
# Files deleted per write transaction. Deleting a file must happen under the blob's file
# lock, which on SQLite is the single write lock: a few deletions at a time keep every
# other writer's wait short, even on a slow disk.
FILE_BATCH_SIZE = 20

# Passes over the orphaned referrers per run. Each pass also finds the referrers of those
# the previous one deleted; a chain deeper than this (never seen in practice: a signature
# of an SBOM of an image is three) is finished by the next runs.
REFERRER_ROUNDS = 8

PHASES = ("upload sessions", "referrers", "blobs", "orphan blob files", "orphan staging areas")


@dataclass(frozen=True, slots=True)
class GcProgress:
    """``done`` items of ``phase`` (one of :data:`PHASES`) handled so far.

    Phases stream their work rather than list it first, so ``total`` is None while a phase
    runs: a phase reports as its batches are done, then once with ``total == done`` when
    it ends (only that report when it found nothing to do).
    """

    phase: str
    done: int
    total: int | None = None


Progress = Callable[[GcProgress], None]


@dataclass(slots=True)
class GcReport:
    """What a run freed (with ``dry_run``: what it would have freed)."""

    dry_run: bool
    blobs_deleted: int = 0
    referrers_deleted: int = 0
    """Manifests whose subject is gone (signatures, SBOMs of deleted images)."""
    uploads_removed: int = 0
    orphan_files_removed: int = 0
    """Blob files without a row, and staging areas without a session."""
    bytes_freed: int = 0
    """Blob sizes, staged bytes recorded by sessions, and orphan files' sizes."""
    blobs_spared: int = 0
    """Unreferenced blobs left because they were used within the grace period."""
    bytes_spared: int = 0
    next_collectable_at: datetime | None = None
    """When the first spared blob leaves its grace period (unless it is used again)."""

    def as_dict(self) -> dict[str, int | bool | str | None]:
        values = asdict(self)
        if self.next_collectable_at is not None:
            values["next_collectable_at"] = self.next_collectable_at.isoformat()
        return values

    def summary(self) -> str:
        verb = "would free" if self.dry_run else "freed"
        return (
            f"{verb} {_human(self.bytes_freed)}: {_count(self.blobs_deleted, 'blob')}, "
            f"{_count(self.referrers_deleted, 'referrer')}, "
            f"{_count(self.uploads_removed, 'upload session')}, "
            f"{_count(self.orphan_files_removed, 'orphan file')}" + self._spared()
        )

    def _spared(self) -> str:
        """Why a delete freed nothing yet: its blobs wait out the grace period."""
        if not self.blobs_spared:
            return ""
        when = (
            f"; the first becomes collectable at {self.next_collectable_at:%Y-%m-%d %H:%M:%S} UTC"
            if self.next_collectable_at is not None
            else ""
        )
        return (
            f"\n{_count(self.blobs_spared, 'unreferenced blob')} ({_human(self.bytes_spared)}) "
            f"spared by the grace period (--grace-period){when}"
        )


class GarbageCollector:
    """Runs collections; holds no state between runs (any process may run one, and two
    concurrent runs only do some work twice). A run's memory does not grow with the store:
    it holds one batch at a time."""

    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        clock: Clock,
        *,
        grace_period: timedelta = DEFAULT_GRACE_PERIOD,
        upload_grace_period: timedelta = DEFAULT_UPLOAD_GRACE_PERIOD,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if grace_period < timedelta(0) or upload_grace_period < timedelta(0):
            raise ValueError("grace periods must not be negative")
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        self._metadata = metadata
        self._blobs = blobs
        self._clock = clock
        self._grace = grace_period
        self._upload_grace = upload_grace_period
        self._batch = batch_size
        self._file_batch = min(batch_size, FILE_BATCH_SIZE)

    async def run(self, dry_run: bool = False, progress: Progress | None = None) -> GcReport:
        """Collect once. With ``dry_run`` nothing is deleted and the report says what would
        be. Raises what the stores raise; a failed run leaves nothing inconsistent."""
        report = GcReport(dry_run=dry_run)
        now = self._clock()
        blob_cutoff = now - self._grace
        upload_cutoff = now - self._upload_grace
        notify = progress or (lambda _: None)
        await self._upload_sessions(report, upload_cutoff, notify)
        # Before the blobs: the referrers' blobs are then unreferenced, although their grace
        # period restarts now (deleting a manifest is a use of its blobs).
        await self._orphaned_referrers(report, blob_cutoff, now, notify)
        await self._unreferenced_blobs(report, blob_cutoff, notify)
        async with self._metadata.read() as tx:
            spared = await tx.gc_spared_blobs(blob_cutoff)
        report.blobs_spared, report.bytes_spared = spared.count, spared.size
        if spared.earliest_use is not None:
            report.next_collectable_at = spared.earliest_use + self._grace
        await self._orphan_blob_files(report, blob_cutoff, notify)
        await self._orphan_staging_areas(report, upload_cutoff, notify)
        log.info("garbage collection: %s", report.summary())
        return report

    # -- phases -------------------------------------------------------------------------

    async def _upload_sessions(self, report: GcReport, cutoff: datetime, notify: Progress) -> None:
        phase = PHASES[0]
        done = 0
        after: UploadSession | None = None
        while True:
            if report.dry_run:
                async with self._metadata.read() as tx:
                    batch = await tx.list_uploads_updated_before(
                        cutoff, after=after, limit=self._batch
                    )
                after = batch[-1] if batch else None
            else:
                async with self._metadata.transaction() as tx:
                    batch = await tx.delete_stale_uploads(cutoff, self._batch)
                for session in batch:  # after the commit: bytes go after their metadata
                    await self._blobs.cancel_upload(session.id)
            report.uploads_removed += len(batch)
            report.bytes_freed += sum(session.size for session in batch)
            done += len(batch)
            if len(batch) < self._batch:
                break
            notify(GcProgress(phase, done))
        notify(GcProgress(phase, done, done))

    async def _orphaned_referrers(
        self, report: GcReport, cutoff: datetime, now: datetime, notify: Progress
    ) -> None:
        """Passes over the candidates a page at a time, by repository then digest, until a
        pass deletes nothing (at most ``REFERRER_ROUNDS``). Each page is one transaction
        that re-checks its candidates under their locks. A dry run deletes nothing, so it
        follows each page's chains of referrers instead, to the same depth."""
        phase = PHASES[1]
        done = 0
        for _ in range(REFERRER_ROUNDS):
            deleted = 0
            after: tuple[int, Digest] | None = None
            while True:
                async with self._metadata.read() as tx:
                    page = await tx.gc_referrer_candidates(cutoff, after=after, limit=self._batch)
                if report.dry_run:
                    report.referrers_deleted += await self._count_chains(page, cutoff)
                elif page:
                    async with self._metadata.transaction() as tx:
                        # In (repository, digest) order, the order of every manifest lock.
                        for repository_id, records in groupby(page, _repository_id):
                            gone = await tx.delete_orphaned_referrers(
                                repository_id, [r.digest for r in records], cutoff, now=now
                            )
                            deleted += len(gone)
                            report.referrers_deleted += len(gone)
                done += len(page)
                if len(page) < self._batch:
                    break
                after = (page[-1].repository_id, page[-1].digest)
                notify(GcProgress(phase, done))
            if report.dry_run or not deleted:
                break
        notify(GcProgress(phase, done, done))

    async def _count_chains(self, page: Sequence[ManifestRecord], cutoff: datetime) -> int:
        """How many manifests deleting ``page`` would free, with the untagged referrers
        pushed before ``cutoff`` of those, and of those, ``REFERRER_ROUNDS`` levels deep."""
        counted = 0
        level = list(page)
        for _ in range(REFERRER_ROUNDS):
            if not level:
                break
            counted += len(level)
            below: list[ManifestRecord] = []
            async with self._metadata.read() as tx:
                for record in level:
                    referrers = [
                        referrer
                        for referrer in await tx.list_referrers(record.repository_id, record.digest)
                        if referrer.pushed_at < cutoff
                    ]
                    tagged = await tx.tags_by_manifest(
                        record.repository_id, [referrer.digest for referrer in referrers]
                    )
                    below.extend(r for r in referrers if r.digest not in tagged)
            level = below
        return counted

    async def _unreferenced_blobs(
        self, report: GcReport, cutoff: datetime, notify: Progress
    ) -> None:
        """Candidates a page at a time, by digest; each page is re-checked as it is deleted."""
        phase = PHASES[2]
        done = 0
        after: Digest | None = None
        while True:
            async with self._metadata.read() as tx:
                page = await tx.gc_blob_candidates(cutoff, after=after, limit=self._batch)
            if report.dry_run:
                report.blobs_deleted += len(page)
                report.bytes_freed += sum(blob.size for blob in page)
            elif page:
                async with self._metadata.transaction() as tx:
                    deleted = await tx.delete_unreferenced_blobs([b.digest for b in page], cutoff)
                await self._delete_unrecorded_files([blob.digest for blob in deleted])
                report.blobs_deleted += len(deleted)
                report.bytes_freed += sum(blob.size for blob in deleted)
            done += len(page)
            if len(page) < self._batch:
                break
            after = page[-1].digest
            notify(GcProgress(phase, done))
        notify(GcProgress(phase, done, done))

    async def _orphan_blob_files(
        self, report: GcReport, cutoff: datetime, notify: Progress
    ) -> None:
        phase = PHASES[3]
        done = 0
        async for batch in _batches(self._blobs.list_digests(cutoff), self._batch):
            # Most files listed are recorded: sort them out in a read, not under the lock.
            async with self._metadata.read() as tx:
                orphans = sorted(await tx.unrecorded_blobs(batch), key=str)
            if report.dry_run:
                sizes = await self._blobs.stat_many(orphans)
                report.orphan_files_removed += len(sizes)
                report.bytes_freed += sum(sizes.values())
            else:
                removed, freed = await self._delete_unrecorded_files(orphans)
                report.orphan_files_removed += removed
                report.bytes_freed += freed
            done += len(batch)
            notify(GcProgress(phase, done))
        notify(GcProgress(phase, done, done))

    async def _orphan_staging_areas(
        self, report: GcReport, cutoff: datetime, notify: Progress
    ) -> None:
        phase = PHASES[4]
        done = 0
        async for batch in _batches(self._blobs.list_uploads(cutoff), self._batch):
            async with self._metadata.read() as tx:
                orphans = [u for u in batch if await tx.get_upload(u) is None]
            for upload_id in orphans:
                try:
                    size = await self._blobs.upload_size(upload_id)
                except UploadUnknown:
                    size = 0  # a staging area a crash left without its data
                if not report.dry_run:
                    await self._blobs.cancel_upload(upload_id)
                report.orphan_files_removed += 1
                report.bytes_freed += size
            done += len(batch)
            notify(GcProgress(phase, done))
        notify(GcProgress(phase, done, done))

    # -- helpers ------------------------------------------------------------------------

    async def _delete_unrecorded_files(self, digests: Sequence[Digest]) -> tuple[int, int]:
        """Delete the bytes of those of ``digests`` that no row records, under the file lock
        (step 3 of the module docstring); return how many files went and their bytes.

        The lock is held for at most ``FILE_BATCH_SIZE`` deletions at a time. Sizes are
        read before it is taken: a digest's bytes, hence its size, never change."""
        removed = freed = 0
        for start in range(0, len(digests), self._file_batch):
            sizes = await self._blobs.stat_many(digests[start : start + self._file_batch])
            if not sizes:
                continue
            async with self._metadata.transaction() as tx:
                unrecorded = sorted(await tx.lock_blob_files(sizes), key=str)
                for digest in await self._blobs.delete_many(unrecorded):
                    removed += 1
                    freed += sizes[digest]
        return removed, freed


async def _batches(items: AsyncIterator[_T], size: int) -> AsyncIterator[list[_T]]:
    """``items`` in lists of ``size`` (the last one shorter), as they come."""
    batch: list[_T] = []
    async for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _repository_id(record: ManifestRecord) -> int:
    return record.repository_id


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
