"""The lifecycle records port: policies, previews, the candidates a policy is evaluated over,
and the audit trail of runs.

Part of every metadata transaction (``MetadataTransaction`` includes
:class:`LifecycleRecords`), so that a run's deletions, its audit record and the policy's
``last_evaluated_at`` can share a unit of work with everything else. The SQL schema is in
``storage/metadata/sql/tables.py``; the evaluation itself in ``moorage.domain.lifecycle``.

- A repository has at most one **lifecycle policy** (the text as put, when it was set, when a
  run last evaluated it); it goes with its repository.
- A repository has at most one **preview**, the latest started; its **results** are the
  decisions of the evaluator, one per image acted on, with the image's tags and push time as
  they were when the preview ran. It goes with its repository.
- A **run** (the scheduled job, or ``moorage lifecycle run``) is recorded with every image it
  expired, or would have expired in a dry run. Runs name their repository by registry and name
  and outlive it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from moorage.domain.digests import Digest
from moorage.domain.lifecycle import ActionType, Candidate, StorageClass
from moorage.domain.models import Repository


class PreviewStatus(StrEnum):
    """ECR's ``LifecyclePolicyPreviewStatus``."""

    IN_PROGRESS = "IN_PROGRESS"
    COMPLETE = "COMPLETE"
    EXPIRED = "EXPIRED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class LifecyclePolicyRecord:
    repository_id: int
    text: str
    set_at: datetime
    last_evaluated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LifecyclePreview:
    """A repository's current preview (its results are listed separately)."""

    repository_id: int
    text: str
    status: PreviewStatus
    started_at: datetime
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PreviewResult:
    """One image a preview acts on. ``tags`` are sorted."""

    digest: Digest
    tags: tuple[str, ...]
    pushed_at: datetime
    rule_priority: int
    action: ActionType
    target_storage_class: StorageClass | None = None


@dataclass(frozen=True, slots=True)
class RunImage:
    """One image a run expired (``deleted``), or decided to expire and did not: a dry run, or
    the image changed after the evaluation (its tags changed, an index lists it now, or it is
    gone). ``tags`` are those it was evaluated with."""

    digest: Digest
    tags: tuple[str, ...]
    rule_priority: int
    action: ActionType
    dry_run: bool
    deleted: bool


@dataclass(frozen=True, slots=True)
class LifecycleRun:
    """A run over one repository. ``id`` is None until recorded."""

    registry_id: str
    repository_name: str
    policy_text: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime
    images: tuple[RunImage, ...] = field(default=())
    id: int | None = None


class LifecycleRecords(Protocol):
    # -- policies -----------------------------------------------------------------------
    async def get_lifecycle_policy(self, repository_id: int) -> LifecyclePolicyRecord | None: ...

    async def put_lifecycle_policy(
        self, repository_id: int, text: str, now: datetime
    ) -> LifecyclePolicyRecord:
        """Set or replace the repository's policy (the repository must exist), set at ``now``
        and not evaluated yet; return it as stored."""
        ...

    async def delete_lifecycle_policy(self, repository_id: int) -> LifecyclePolicyRecord | None:
        """Remove the policy; return it as it was, or None when there was none."""
        ...

    async def mark_lifecycle_evaluated(self, repository_id: int, text: str, now: datetime) -> bool:
        """Record that the policy ``text`` was evaluated at ``now``; False (nothing changes)
        when the repository's policy is no longer that text."""
        ...

    async def list_lifecycle_policies(
        self, *, registry_id: str | None = None, name: str | None = None
    ) -> list[tuple[Repository, LifecyclePolicyRecord]]:
        """Every repository that has a policy, with it, by registry then binary order of
        name; optionally only those of one registry and/or one name."""
        ...

    async def lifecycle_candidates(
        self, repository_id: int, *, after: Digest | None = None, limit: int | None = None
    ) -> list[Candidate]:
        """The repository's manifests as the evaluator sees them: tags, push and last pull
        times, and whether an index of the repository lists each. Ordered by digest: the
        first ``limit`` (default all) of those after ``after``. Pages read in one transaction
        form one consistent snapshot."""
        ...

    # -- previews -----------------------------------------------------------------------
    async def start_lifecycle_preview(
        self, repository_id: int, text: str, now: datetime, *, stale_before: datetime
    ) -> LifecyclePreview | None:
        """Replace the repository's preview (and its results) with an ``IN_PROGRESS`` one of
        ``text`` started at ``now``, and return it; None, changing nothing, when a preview
        started at or after ``stale_before`` is still in progress. Concurrent starts: one
        wins."""
        ...

    async def get_lifecycle_preview(self, repository_id: int) -> LifecyclePreview | None: ...

    async def finish_lifecycle_preview(
        self,
        repository_id: int,
        started_at: datetime,
        status: PreviewStatus,
        results: Iterable[PreviewResult],
        now: datetime,
    ) -> bool:
        """Give the preview started at ``started_at`` its final ``status`` and ``results``;
        False (nothing changes) unless that preview is still the repository's and in
        progress."""
        ...

    async def list_lifecycle_preview_results(
        self,
        repository_id: int,
        *,
        digests: Sequence[Digest] | None = None,
        tagged: bool | None = None,
        after: Digest | None = None,
        limit: int | None = None,
    ) -> list[PreviewResult]:
        """The current preview's results in binary order of digest: only those of ``digests``
        when given, only tagged (or untagged) images when ``tagged`` is given, strictly after
        ``after``."""
        ...

    async def count_lifecycle_preview_results(
        self, repository_id: int
    ) -> dict[tuple[ActionType, StorageClass | None], int]:
        """How many results the current preview has per (action, target storage class)."""
        ...

    # -- the audit trail of runs --------------------------------------------------------
    async def record_lifecycle_run(self, run: LifecycleRun) -> LifecycleRun:
        """Record a run with its images; return it with its ``id``."""
        ...

    async def list_lifecycle_runs(
        self,
        *,
        registry_id: str | None = None,
        repository_name: str | None = None,
        limit: int | None = None,
    ) -> list[LifecycleRun]:
        """Runs with their images, newest (highest id) first."""
        ...

    async def delete_lifecycle_runs(self, finished_before: datetime) -> int:
        """Forget the runs that finished before the cutoff; how many."""
        ...
