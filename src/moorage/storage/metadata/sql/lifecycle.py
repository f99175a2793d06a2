"""The LifecycleRecords port on SQL: a mixin of the store's transaction (``store.py``).

``SqlLifecycleRecords`` runs its statements on ``self._c``, the transaction's connection, like
``identities.py`` and ``jobs.py``. Two statements carry the design:

- the **candidates** of a repository are one query over ``manifests``, left-joined to their
  tags (one row per tag, none lost for an untagged image) and asking ``manifest_references``
  whether an index of the repository lists each manifest. It reads the index columns only
  (never a manifest's payload), walks the manifests' primary key in digest order, and finds
  tags and parents through their indexes, so 100,000 images cost one pass;
- a preview **start** is one upsert whose ``DO UPDATE`` only applies when the current preview
  is not in progress (or is stale), so two concurrent starts cannot both win.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Row, String, delete, func, literal, or_, select, type_coerce, update

from moorage.domain.digests import Digest
from moorage.domain.lifecycle import ActionType, Candidate, StorageClass
from moorage.domain.models import ReferenceKind, Repository
from moorage.ports.lifecycle import (
    LifecyclePolicyRecord,
    LifecyclePreview,
    LifecycleRun,
    PreviewResult,
    PreviewStatus,
    RunImage,
)
from moorage.storage.metadata.sql.rows import chunks, repository_of, stored_digest, stored_time
from moorage.storage.metadata.sql.tables import (
    lifecycle_policies,
    lifecycle_preview_results,
    lifecycle_previews,
    lifecycle_run_images,
    lifecycle_runs,
    manifest_references,
    manifests,
    repositories,
    tags,
)

if TYPE_CHECKING:
    from moorage.storage.metadata.sql.store import _InsertFactory, _Statements

_IN_PROGRESS = PreviewStatus.IN_PROGRESS.value
_RAW = String()
# digest, pushed_at and last_pulled_at as stored, a tag name or None, and whether listed.
_CandidateRow = tuple[str, Any, Any, str | None, Any]


class SqlLifecycleRecords:
    """Lifecycle records on the transaction's connection ``_c``; ``_insert`` is the dialect's
    INSERT (with ``on_conflict_*``), ``region`` the region the transaction acts in. All are
    set by ``_SqlTransaction.__init__``."""

    _c: _Statements
    _insert: _InsertFactory
    region: str

    # -- policies -----------------------------------------------------------------------

    async def get_lifecycle_policy(self, repository_id: int) -> LifecyclePolicyRecord | None:
        query = select(lifecycle_policies).where(
            lifecycle_policies.c.repository_id == repository_id
        )
        row = (await self._c.execute(query)).first()
        return None if row is None else _policy(row)

    async def put_lifecycle_policy(
        self, repository_id: int, text: str, now: datetime
    ) -> LifecyclePolicyRecord:
        values = {"policy_text": text, "set_at": now, "last_evaluated_at": None}
        statement = (
            self._insert(lifecycle_policies)
            .values(repository_id=repository_id, **values)
            .on_conflict_do_update(index_elements=["repository_id"], set_=values)
            .returning(*lifecycle_policies.c)
        )
        row = (await self._c.execute(statement)).one()
        return _policy(row)

    async def delete_lifecycle_policy(self, repository_id: int) -> LifecyclePolicyRecord | None:
        statement = (
            delete(lifecycle_policies)
            .where(lifecycle_policies.c.repository_id == repository_id)
            .returning(*lifecycle_policies.c)
        )
        row = (await self._c.execute(statement)).first()
        return None if row is None else _policy(row)

    async def mark_lifecycle_evaluated(self, repository_id: int, text: str, now: datetime) -> bool:
        statement = (
            update(lifecycle_policies)
            .where(
                lifecycle_policies.c.repository_id == repository_id,
                lifecycle_policies.c.policy_text == text,
            )
            .values(last_evaluated_at=now)
        )
        return bool((await self._c.execute(statement)).rowcount)

    async def list_lifecycle_policies(
        self, *, registry_id: str | None = None, name: str | None = None
    ) -> list[tuple[Repository, LifecyclePolicyRecord]]:
        query = (
            select(repositories, lifecycle_policies)
            .join(lifecycle_policies, lifecycle_policies.c.repository_id == repositories.c.id)
            .where(repositories.c.region == self.region)
            .order_by(repositories.c.registry_id, repositories.c.name)
        )
        if registry_id is not None:
            query = query.where(repositories.c.registry_id == registry_id)
        if name is not None:
            query = query.where(repositories.c.name == name)
        return [(repository_of(row), _policy(row)) for row in await self._c.execute(query)]

    async def lifecycle_candidates(
        self, repository_id: int, *, after: Digest | None = None, limit: int | None = None
    ) -> list[Candidate]:
        page_query = (
            select(
                manifests.c.repository_id,
                manifests.c.digest,
                manifests.c.pushed_at,
                manifests.c.last_pulled_at,
            )
            .where(manifests.c.repository_id == repository_id)
            .order_by(manifests.c.digest)
            .limit(limit)
        )
        if after is not None:
            page_query = page_query.where(manifests.c.digest > str(after))
        page = page_query.subquery("page")
        listed_by_index = (
            select(literal(1))
            .where(
                manifest_references.c.child_digest == page.c.digest,
                manifest_references.c.repository_id == page.c.repository_id,
                manifest_references.c.kind == ReferenceKind.MANIFEST.value,
            )
            .exists()
            .label("listed")
        )
        # Times as stored: SQLite's text parses far faster with fromisoformat than through
        # the column type, and 100,000 rows make that a second (see stored_time).
        query = (
            select(
                page.c.digest,
                type_coerce(page.c.pushed_at, _RAW).label("pushed_at"),
                type_coerce(page.c.last_pulled_at, _RAW).label("last_pulled_at"),
                tags.c.name.label("tag"),
                listed_by_index,
            )
            .select_from(page)
            .outerjoin(
                tags,
                (tags.c.repository_id == page.c.repository_id)
                & (tags.c.manifest_digest == page.c.digest),
            )
            .order_by(page.c.digest)
        )
        # One row per tag (or one untagged row) of each image, in digest order.
        candidates: list[Candidate] = []
        current: str | None = None
        pushed = pulled = listed = None
        names: list[str] = []
        for row in await self._c.execute(query):
            digest, pushed_at, last_pulled_at, tag, is_listed = cast(_CandidateRow, row)
            if digest != current:
                if current is not None:
                    candidates.append(_candidate(current, pushed, pulled, names, listed))
                current, pushed, pulled, listed, names = (
                    digest,
                    pushed_at,
                    last_pulled_at,
                    is_listed,
                    [],
                )
            if tag is not None:
                names.append(tag)
        if current is not None:
            candidates.append(_candidate(current, pushed, pulled, names, listed))
        return candidates

    # -- previews -----------------------------------------------------------------------

    async def start_lifecycle_preview(
        self, repository_id: int, text: str, now: datetime, *, stale_before: datetime
    ) -> LifecyclePreview | None:
        values = {
            "policy_text": text,
            "status": _IN_PROGRESS,
            "started_at": now,
            "finished_at": None,
        }
        statement = (
            self._insert(lifecycle_previews)
            .values(repository_id=repository_id, **values)
            .on_conflict_do_update(
                index_elements=["repository_id"],
                set_=values,
                where=or_(
                    lifecycle_previews.c.status != _IN_PROGRESS,
                    lifecycle_previews.c.started_at < stale_before,
                ),
            )
            .returning(*lifecycle_previews.c)
        )
        row = (await self._c.execute(statement)).first()
        if row is None:
            return None
        await self._c.execute(
            delete(lifecycle_preview_results).where(
                lifecycle_preview_results.c.repository_id == repository_id
            )
        )
        return _preview(row)

    async def get_lifecycle_preview(self, repository_id: int) -> LifecyclePreview | None:
        query = select(lifecycle_previews).where(
            lifecycle_previews.c.repository_id == repository_id
        )
        row = (await self._c.execute(query)).first()
        return None if row is None else _preview(row)

    async def finish_lifecycle_preview(
        self,
        repository_id: int,
        started_at: datetime,
        status: PreviewStatus,
        results: Iterable[PreviewResult],
        now: datetime,
    ) -> bool:
        statement = (
            update(lifecycle_previews)
            .where(
                lifecycle_previews.c.repository_id == repository_id,
                lifecycle_previews.c.started_at == started_at,
                lifecycle_previews.c.status == _IN_PROGRESS,
            )
            .values(status=status.value, finished_at=now)
        )
        if not (await self._c.execute(statement)).rowcount:
            return False
        rows = (
            {
                "repository_id": repository_id,
                "digest": str(result.digest),
                "tags": sorted(result.tags),
                "tagged": bool(result.tags),
                "pushed_at": result.pushed_at,
                "rule_priority": result.rule_priority,
                "action": result.action.value,
                "target_storage_class": (
                    None
                    if result.target_storage_class is None
                    else result.target_storage_class.value
                ),
            }
            for result in results
        )
        for batch in chunks(rows):
            await self._c.execute(lifecycle_preview_results.insert(), batch)
        return True

    async def list_lifecycle_preview_results(
        self,
        repository_id: int,
        *,
        digests: Sequence[Digest] | None = None,
        tagged: bool | None = None,
        after: Digest | None = None,
        limit: int | None = None,
    ) -> list[PreviewResult]:
        table = lifecycle_preview_results
        query = (
            select(table)
            .where(table.c.repository_id == repository_id)
            .order_by(table.c.digest)
            .limit(limit)
        )
        if tagged is not None:
            query = query.where(table.c.tagged == tagged)
        if after is not None:
            query = query.where(table.c.digest > str(after))
        if digests is None:
            return [_result(row) for row in await self._c.execute(query)]
        found: list[PreviewResult] = []
        for batch in chunks(sorted({str(d) for d in digests})):
            found.extend(
                _result(row)
                for row in await self._c.execute(query.where(table.c.digest.in_(batch)))
            )
        found.sort(key=lambda result: str(result.digest))
        return found[:limit] if limit is not None else found

    async def count_lifecycle_preview_results(
        self, repository_id: int
    ) -> dict[tuple[ActionType, StorageClass | None], int]:
        table = lifecycle_preview_results
        query = (
            select(table.c.action, table.c.target_storage_class, func.count().label("n"))
            .where(table.c.repository_id == repository_id)
            .group_by(table.c.action, table.c.target_storage_class)
        )
        counts: dict[tuple[ActionType, StorageClass | None], int] = {}
        for row in await self._c.execute(query):
            target = row.target_storage_class
            key = (ActionType(row.action), None if target is None else StorageClass(target))
            counts[key] = int(row.n)
        return counts

    # -- the audit trail of runs --------------------------------------------------------

    async def record_lifecycle_run(self, run: LifecycleRun) -> LifecycleRun:
        statement = (
            lifecycle_runs.insert()
            .values(
                registry_id=run.registry_id,
                region=self.region,
                repository_name=run.repository_name,
                policy_text=run.policy_text,
                dry_run=run.dry_run,
                started_at=run.started_at,
                finished_at=run.finished_at,
            )
            .returning(lifecycle_runs.c.id)
        )
        run_id = int((await self._c.execute(statement)).scalar_one())
        rows = (
            {
                "run_id": run_id,
                "digest": str(image.digest),
                "tags": sorted(image.tags),
                "rule_priority": image.rule_priority,
                "action": image.action.value,
                "dry_run": image.dry_run,
                "deleted": image.deleted,
            }
            for image in run.images
        )
        for batch in chunks(rows):
            await self._c.execute(lifecycle_run_images.insert(), batch)
        return LifecycleRun(
            registry_id=run.registry_id,
            repository_name=run.repository_name,
            policy_text=run.policy_text,
            dry_run=run.dry_run,
            started_at=run.started_at,
            finished_at=run.finished_at,
            images=tuple(
                replace(image, tags=tuple(sorted(image.tags)))
                for image in sorted(run.images, key=lambda image: str(image.digest))
            ),
            id=run_id,
        )

    async def list_lifecycle_runs(
        self,
        *,
        registry_id: str | None = None,
        repository_name: str | None = None,
        limit: int | None = None,
    ) -> list[LifecycleRun]:
        query = (
            select(lifecycle_runs)
            .where(lifecycle_runs.c.region == self.region)
            .order_by(lifecycle_runs.c.id.desc())
            .limit(limit)
        )
        if registry_id is not None:
            query = query.where(lifecycle_runs.c.registry_id == registry_id)
        if repository_name is not None:
            query = query.where(lifecycle_runs.c.repository_name == repository_name)
        runs = list(await self._c.execute(query))
        images: dict[int, list[RunImage]] = {}
        for batch in chunks([run.id for run in runs]):
            image_query = (
                select(lifecycle_run_images)
                .where(lifecycle_run_images.c.run_id.in_(batch))
                .order_by(lifecycle_run_images.c.run_id, lifecycle_run_images.c.digest)
            )
            for row in await self._c.execute(image_query):
                images.setdefault(row.run_id, []).append(
                    RunImage(
                        digest=stored_digest(row.digest),
                        tags=tuple(row.tags),
                        rule_priority=row.rule_priority,
                        action=ActionType(row.action),
                        dry_run=bool(row.dry_run),
                        deleted=bool(row.deleted),
                    )
                )
        return [
            LifecycleRun(
                registry_id=row.registry_id,
                repository_name=row.repository_name,
                policy_text=row.policy_text,
                dry_run=bool(row.dry_run),
                started_at=row.started_at,
                finished_at=row.finished_at,
                images=tuple(images.get(row.id, ())),
                id=row.id,
            )
            for row in runs
        ]

    async def delete_lifecycle_runs(self, finished_before: datetime) -> int:
        statement = delete(lifecycle_runs).where(lifecycle_runs.c.finished_at < finished_before)
        return int((await self._c.execute(statement)).rowcount)


def _candidate(
    digest: str, pushed_at: Any, last_pulled_at: Any, names: list[str], listed: Any
) -> Candidate:
    return Candidate(
        stored_digest(digest),
        stored_time(pushed_at),
        frozenset(names),
        None if last_pulled_at is None else stored_time(last_pulled_at),
        StorageClass.STANDARD,
        None,
        bool(listed),
    )


def _policy(row: Row[Any]) -> LifecyclePolicyRecord:
    return LifecyclePolicyRecord(
        repository_id=row.repository_id,
        text=row.policy_text,
        set_at=row.set_at,
        last_evaluated_at=row.last_evaluated_at,
    )


def _preview(row: Row[Any]) -> LifecyclePreview:
    return LifecyclePreview(
        repository_id=row.repository_id,
        text=row.policy_text,
        status=PreviewStatus(row.status),
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _result(row: Row[Any]) -> PreviewResult:
    target = row.target_storage_class
    return PreviewResult(
        digest=stored_digest(row.digest),
        tags=tuple(row.tags),
        pushed_at=row.pushed_at,
        rule_priority=row.rule_priority,
        action=ActionType(row.action),
        target_storage_class=None if target is None else StorageClass(target),
    )
