"""Lifecycle policies: Put/Get/DeleteLifecyclePolicy, previews, and the runs that expire images.

One evaluation path serves the preview and the run (shared reference §5.4): read the policy
and the repository's candidates (:func:`read_candidates`, in pages) in one read transaction,
then :func:`plan` them with ``moorage.domain.lifecycle.evaluate`` at one instant. Evaluation
is CPU work (about a second for 100,000 images), so :func:`plan` runs in a thread, off the
event loop that serves requests. Reading and evaluating pause the cyclic garbage collector
(``services/allocation.py``), which would otherwise spend a third of the time rescanning the
half a million acyclic objects they build.

A preview stores the plan; a run deletes the images the plan expires, by digest, through
``ImageService.delete_unchanged`` (BatchDeleteImage's own path, so an image an index lists is
refused there too), which keeps an image whose tags are no longer those it was evaluated with
(tagged or untagged since: the decision was about another image), then records what it did
in the audit trail (a kept image with ``deleted=False``) and the policy's
``last_evaluated_at``, in one transaction.

Previews run as jobs (kind :data:`PREVIEW_JOB`, on the job runner of ``moorage serve`` or
``moorage worker``): :meth:`LifecycleService.start_preview` records an ``IN_PROGRESS`` preview
and enqueues its job in one transaction; the job completes it (``COMPLETE``, or ``FAILED``
when the evaluation raised, or when the job's last attempt failed). A preview still in progress
after :data:`PREVIEW_STALE_AFTER` (its job lost for good, or so late that the candidates have
moved on) is reported ``FAILED``, is finished ``FAILED`` if its job ever runs, and no longer
blocks a new start. Scheduled runs are jobs of kind :data:`RUN_JOB` over every repository with
a policy; a repository that fails is logged and skipped, and the job fails (to be retried)
only when every repository failed.

Our decisions:

- ``EXPIRED``: ECR's status enum has it and neither its model nor its documentation (shared
  reference §5.5) says when it applies. A ``COMPLETE`` preview finished more than
  :data:`PREVIEW_EXPIRE_AFTER` ago is reported ``EXPIRED``: its results are still returned,
  but they describe the repository as it was then. ``FAILED`` previews stay ``FAILED``.
- Referrers (signatures, SBOMs: manifests with a subject) and indexes are candidates like any
  image: ECR's lifecycle counts them too ("keep 1 image" keeps one image, signature or index:
  https://github.com/aws/containers-roadmap/issues/2613). An image an index lists is still
  never expired while the index exists.
- ``transition`` decisions (archive storage) appear in previews, as ECR would report them, and
  are ignored by runs: there is no archive storage class here yet.
- A dry run evaluates and records its audit entry (each image ``deleted=False``) but leaves
  ``last_evaluated_at`` alone: nothing was applied.
- Putting a policy resets ``last_evaluated_at`` (the new text has not been evaluated).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from moorage.domain.digests import Digest, is_digest
from moorage.domain.errors import (
    InvalidParameter,
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
from moorage.services.allocation import cyclic_gc_paused
from moorage.services.images import MAX_BATCH_IDS, ExpectedImage, ImageId, ImageService
from moorage.services.repositories import require

log = logging.getLogger("moorage.lifecycle")

PREVIEW_JOB = "lifecycle.preview"
RUN_JOB = "lifecycle.run"
RUN_SCHEDULE = "lifecycle"
# A preview whose job has not finished it by then was lost: it is reported FAILED, and a new
# start may replace it.
PREVIEW_STALE_AFTER = timedelta(minutes=15)
# A COMPLETE preview finished that long ago is reported EXPIRED (see "Our decisions").
PREVIEW_EXPIRE_AFTER = timedelta(hours=24)
# How many tagged preview results GetLifecyclePolicyPreview reads at a time to find imageIds
# named by tag.
_NAMED_TAG_PAGE = 1000
# Candidates per read: about 50 ms of the event loop each on SQLite.
CANDIDATE_PAGE = 5000
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


async def read_candidates(tx: MetadataTransaction, repository_id: int) -> list[Candidate]:
    """Every candidate of the repository, read in pages of :data:`CANDIDATE_PAGE` in the one
    transaction ``tx`` (one snapshot). On SQLite reads run on the event loop; between pages
    the loop serves requests, rather than stalling for the whole repository."""
    candidates: list[Candidate] = []
    after: Digest | None = None
    while True:
        page = await tx.lifecycle_candidates(repository_id, after=after, limit=CANDIDATE_PAGE)
        candidates += page
        if len(page) < CANDIDATE_PAGE:
            return candidates
        after = page[-1].digest
        await asyncio.sleep(0)


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
            payload = {
                "repository_id": repository.id,
                "region": repository.region,  # which region's services run it
                "started_at": now.isoformat(),
            }
            await tx.enqueue_job(PREVIEW_JOB, payload, now)
        return preview

    async def complete_preview(self, repository_id: int, started_at: datetime) -> bool:
        """Evaluate the preview started at ``started_at`` and store its results; False when
        that preview is no longer the repository's, or no longer in progress. A preview
        started more than :data:`PREVIEW_STALE_AFTER` ago is finished ``FAILED`` unevaluated
        (it has been reported so since then). Idempotent."""
        with cyclic_gc_paused():
            async with self._metadata.read() as tx:
                preview = await tx.get_lifecycle_preview(repository_id)
                if (
                    preview is None
                    or preview.started_at != started_at
                    or preview.status is not PreviewStatus.IN_PROGRESS
                ):
                    return False
                stale = _stale(preview, self._clock())
                candidates = [] if stale else await read_candidates(tx, repository_id)
            now = self._clock()
            status = PreviewStatus.COMPLETE
            results: list[PreviewResult] = []
            if stale:
                log.warning("lifecycle preview of repository %d ran too late", repository_id)
                status = PreviewStatus.FAILED
            else:
                try:
                    results = await asyncio.to_thread(plan, preview.text, candidates, now)
                except Exception:
                    log.exception("lifecycle preview of repository %d failed", repository_id)
                    status = PreviewStatus.FAILED
            del candidates
        async with self._metadata.transaction() as tx:
            return await tx.finish_lifecycle_preview(
                repository_id, started_at, status, results, self._clock()
            )

    async def handle_preview_job(self, job: Job, _progress: object = None) -> None:
        """The job runner's handler for :data:`PREVIEW_JOB`. When the job's last attempt
        fails, the preview is finished ``FAILED`` before the error goes to the runner: nothing
        would finish it otherwise."""
        repository_id = int(job.payload["repository_id"])
        started_at = datetime.fromisoformat(str(job.payload["started_at"]))
        try:
            await self.complete_preview(repository_id, started_at)
        except Exception:
            if job.attempts >= job.max_attempts:
                await self._fail_preview(repository_id, started_at)
            raise

    async def _fail_preview(self, repository_id: int, started_at: datetime) -> None:
        """Finish the preview ``FAILED``; a failure to do so is logged, not raised (the
        caller is handling the error that matters, and the preview is reported ``FAILED``
        once stale anyway)."""
        try:
            async with self._metadata.transaction() as tx:
                await tx.finish_lifecycle_preview(
                    repository_id, started_at, PreviewStatus.FAILED, [], self._clock()
                )
        except Exception:
            log.exception("lifecycle: could not record the failed preview of %d", repository_id)

    async def get_preview(
        self,
        registry_id: str,
        name: str,
        *,
        image_ids: Sequence[ImageId] | None = None,
        tagged: bool | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> PreviewPage:
        """GetLifecyclePolicyPreview: the current preview and a page of ``limit`` (default
        100) of its results, or all the results naming ``image_ids`` when given, unpaged. The
        status is as ECR would report it: a preview in progress for more than
        :data:`PREVIEW_STALE_AFTER` is ``FAILED``, one complete for more than
        :data:`PREVIEW_EXPIRE_AFTER` ``EXPIRED``. Raises RepositoryNotFound,
        LifecyclePolicyPreviewNotFound, InvalidDigest (a malformed cursor), InvalidParameter
        (``after`` or ``limit`` together with ``image_ids``)."""
        if image_ids is not None and (after is not None or limit is not None):
            raise InvalidParameter(
                "Invalid parameter: nextToken and maxResults cannot be used with imageIds"
            )
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
                limit = 100 if limit is None else limit
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
            preview=_as_reported(preview, self._clock()),
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
        on_failure: Callable[[Repository, Exception], None] | None = None,
    ) -> list[LifecycleRun]:
        """Evaluate the policy of every repository that has one (optionally only those of
        ``registry_id`` and/or named ``repository``) and expire what it decides, unless
        ``dry_run``. Returns the audit records, in the order run; ``on_run`` sees each as
        soon as it is recorded, and ``on_failure`` each repository whose run raised. A
        repository deleted meanwhile is skipped.

        A repository whose run raises is logged and skipped, so that it does not starve the
        others; the last error is raised at the end only when every repository failed (the
        scheduled job then fails and is retried). A retry cannot repeat an audit entry: it
        happens only when no repository completed, and a repository that failed midway
        recorded what it had deleted, which a retry no longer finds."""
        async with self._metadata.read() as tx:
            targets = await tx.list_lifecycle_policies(registry_id=registry_id, name=repository)
        runs = []
        error: Exception | None = None
        failed = 0
        for target, _ in targets:
            try:
                recorded = await self._run_one(target, dry_run=dry_run)
            except Exception as exc:
                log.exception("lifecycle: the run over %s failed", target.name)
                error = exc
                failed += 1
                if on_failure is not None:
                    on_failure(target, exc)
                continue
            if recorded is None:
                continue
            runs.append(recorded)
            if on_run is not None:
                on_run(recorded)
        if error is not None and failed == len(targets):
            raise error
        return runs

    async def history(
        self,
        *,
        registry_id: str | None = None,
        repository: str | None = None,
        limit: int | None = None,
    ) -> list[LifecycleRun]:
        """The audit trail: recorded runs with their images, newest first (the last
        :data:`AUDIT_RETENTION` of them)."""
        async with self._metadata.read() as tx:
            return await tx.list_lifecycle_runs(
                registry_id=registry_id, repository_name=repository, limit=limit
            )

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
        with cyclic_gc_paused():
            async with self._metadata.read() as tx:
                record = await tx.get_lifecycle_policy(repository.id)
                candidates = await read_candidates(tx, repository.id)
            if record is None:
                return None  # deleted since it was listed
            try:
                planned = await asyncio.to_thread(plan, record.text, candidates, started)
            except LifecyclePolicyInvalid:
                # Valid when put; only a stricter parser can refuse it now. Keep the images.
                log.exception("lifecycle: the policy of %s no longer parses", repository.name)
                return None
            del candidates
        expiring = [result for result in planned if result.action is ActionType.EXPIRE]
        deleted: set[Digest] = set()
        if not dry_run:
            try:
                await self._delete(repository, expiring, deleted)
            except RepositoryNotFound:
                return None
            except Exception:
                # Audit what was deleted before the failure: a retry will not find it again.
                if deleted:
                    done = [result for result in expiring if result.digest in deleted]
                    await self._record(repository, record.text, started, done, deleted, dry_run)
                raise
        return await self._record(repository, record.text, started, expiring, deleted, dry_run)

    async def _record(
        self,
        repository: Repository,
        text: str,
        started: datetime,
        expiring: list[PreviewResult],
        deleted: set[Digest],
        dry_run: bool,
    ) -> LifecycleRun:
        """Record the run in the audit trail (and, unless ``dry_run``, that ``text`` was
        evaluated), in one transaction."""
        images = tuple(
            RunImage(
                digest=result.digest,
                tags=result.tags,
                rule_priority=result.rule_priority,
                action=result.action,
                dry_run=dry_run,
                deleted=result.digest in deleted,
            )
            for result in expiring
        )
        async with self._metadata.transaction() as tx:
            finished = self._clock()
            recorded = await tx.record_lifecycle_run(
                LifecycleRun(
                    registry_id=repository.registry_id,
                    repository_name=repository.name,
                    policy_text=text,
                    dry_run=dry_run,
                    started_at=started,
                    finished_at=finished,
                    images=images,
                )
            )
            if not dry_run:
                await tx.mark_lifecycle_evaluated(repository.id, text, finished)
        return recorded

    async def _delete(
        self, repository: Repository, expiring: list[PreviewResult], deleted: set[Digest]
    ) -> None:
        """Delete by digest, BatchDeleteImage's way, a batch per transaction, each image only
        if its tags are still those it was evaluated with; add the digests deleted to
        ``deleted`` as each batch commits. Raises RepositoryNotFound when the repository went
        away."""
        for start in range(0, len(expiring), MAX_BATCH_IDS):
            batch = expiring[start : start + MAX_BATCH_IDS]
            result = await self._images.delete_unchanged(
                repository.registry_id,
                repository.name,
                [ExpectedImage(result.digest, result.tags) for result in batch],
            )
            deleted.update(result.deleted)
            for digest, reason in result.kept:
                log.info("lifecycle: %s@%s kept: %s", repository.name, digest, reason)


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
    # An image found by a tag is tagged. A tag named one image when the preview ran, so the
    # search stops once each tag is found; the pages keep memory bounded meanwhile. (A query
    # by tag in the store would spare the scan of the results.)
    missing = set(wanted_tags) if tagged is not False else set()
    after: Digest | None = None
    while missing:
        page = await records.list_lifecycle_preview_results(
            repository.id, tagged=True, after=after, limit=_NAMED_TAG_PAGE
        )
        for result in page:
            if missing.intersection(result.tags):
                missing.difference_update(result.tags)
                found.setdefault(str(result.digest), result)
        if len(page) < _NAMED_TAG_PAGE:
            break
        after = page[-1].digest
    return [found[digest] for digest in sorted(found)]


def _stale(preview: LifecyclePreview, now: datetime) -> bool:
    return preview.started_at < now - PREVIEW_STALE_AFTER


def _as_reported(preview: LifecyclePreview, now: datetime) -> LifecyclePreview:
    """``preview`` with the status GetLifecyclePolicyPreview reports at ``now``."""
    if preview.status is PreviewStatus.IN_PROGRESS and _stale(preview, now):
        return replace(preview, status=PreviewStatus.FAILED)
    if (
        preview.status is PreviewStatus.COMPLETE
        and preview.finished_at is not None
        and preview.finished_at < now - PREVIEW_EXPIRE_AFTER
    ):
        return replace(preview, status=PreviewStatus.EXPIRED)
    return preview


def _policy_not_found(registry_id: str, name: str) -> LifecyclePolicyNotFound:
    return LifecyclePolicyNotFound(
        f"Lifecycle policy does not exist for the repository with name '{name}' in the "
        f"registry with id '{registry_id}'"
    )
