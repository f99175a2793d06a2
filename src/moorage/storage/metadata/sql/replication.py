"""The ReplicationRecords port on SQL: a mixin of the store's transaction (``store.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from moorage.domain.digests import Digest
from moorage.domain.replication import (
    Destination,
    ReplicationConfiguration,
    ReplicationStatus,
    configuration_from_document,
    configuration_to_document,
)
from moorage.ports.replication import Backfill, BackfillResult, ImageReplication
from moorage.storage.metadata.sql.tables import (
    backfill_results,
    image_replications,
    manifests,
    replicated_tags,
    replication_backfills,
    replication_configurations,
)

if TYPE_CHECKING:
    from moorage.storage.metadata.sql.store import _InsertFactory, _Statements


class SqlReplicationRecords:
    """Replication records on the transaction's connection ``_c``, in region ``region``;
    ``_insert`` is the dialect's INSERT. All are set by ``_SqlTransaction.__init__``."""

    _c: _Statements
    _insert: _InsertFactory
    region: str

    async def get_replication_configuration(
        self, registry_id: str
    ) -> ReplicationConfiguration | None:
        query = select(replication_configurations.c.rules).where(
            replication_configurations.c.registry_id == registry_id,
            replication_configurations.c.region == self.region,
        )
        rules = (await self._c.execute(query)).scalar()
        return None if rules is None else configuration_from_document(rules)

    async def put_replication_configuration(
        self, registry_id: str, config: ReplicationConfiguration, now: datetime
    ) -> None:
        insert = self._insert(replication_configurations).values(
            registry_id=registry_id,
            region=self.region,
            rules=configuration_to_document(config),
            updated_at=now,
        )
        await self._c.execute(
            insert.on_conflict_do_update(
                index_elements=["registry_id", "region"],
                set_={"rules": insert.excluded.rules, "updated_at": now},
            )
        )

    async def set_image_replication(
        self,
        repository_id: int,
        digest: Digest,
        destination: Destination,
        status: ReplicationStatus,
        now: datetime,
        *,
        failure_code: str | None = None,
    ) -> None:
        exists = await self._c.execute(
            select(manifests.c.digest).where(
                manifests.c.repository_id == repository_id, manifests.c.digest == str(digest)
            )
        )
        if exists.first() is None:
            return
        values = {"status": status.value, "failure_code": failure_code, "updated_at": now}
        insert = self._insert(image_replications).values(
            repository_id=repository_id,
            digest=str(digest),
            destination_region=destination.region,
            destination_registry_id=destination.registry_id,
            **values,
        )
        await self._c.execute(
            insert.on_conflict_do_update(
                index_elements=[
                    "repository_id",
                    "digest",
                    "destination_region",
                    "destination_registry_id",
                ],
                set_=values,
            )
        )

    async def image_replications(
        self, repository_id: int, digest: Digest
    ) -> list[ImageReplication]:
        t = image_replications.c
        query = (
            select(
                t.destination_region,
                t.destination_registry_id,
                t.status,
                t.failure_code,
                t.updated_at,
            )
            .where(t.repository_id == repository_id, t.digest == str(digest))
            .order_by(t.destination_region, t.destination_registry_id)
        )
        return [
            ImageReplication(
                Destination(row.destination_region, row.destination_registry_id),
                ReplicationStatus(row.status),
                row.failure_code,
                row.updated_at,
            )
            for row in await self._c.execute(query)
        ]

    async def claim_replicated_tag(self, repository_id: int, tag: str, pushed_at: datetime) -> bool:
        t = replicated_tags.c
        insert = self._insert(replicated_tags).values(
            repository_id=repository_id, tag=tag, pushed_at=pushed_at
        )
        # Moves only forward (or stays, for a retried copy of the same push): a statement
        # of its own, so that two copies racing for the tag are ordered by the database.
        result = await self._c.execute(
            insert.on_conflict_do_update(
                index_elements=["repository_id", "tag"],
                set_={"pushed_at": insert.excluded.pushed_at},
                where=t.pushed_at <= insert.excluded.pushed_at,
            )
        )
        return bool(result.rowcount)


class SqlBackfillRecords:
    """Backfill records on the transaction's connection ``_c``, in region ``region``."""

    _c: _Statements
    _insert: _InsertFactory
    region: str

    async def create_backfill(self, backfill: Backfill) -> None:
        await self._c.execute(
            self._insert(replication_backfills).values(
                id=backfill.id,
                registry_id=backfill.registry_id,
                region=self.region,
                destination_region=backfill.destination.region,
                destination_registry_id=backfill.destination.registry_id,
                status=backfill.status,
                failure_code=backfill.failure_code,
                total=backfill.total,
                completed=backfill.completed,
                failed=backfill.failed,
                failure_codes=list(backfill.failure_codes),
                stop_requested=backfill.stop_requested,
                started_at=backfill.started_at,
                ended_at=backfill.ended_at,
            )
        )

    async def get_backfill(self, registry_id: str, backfill_id: str) -> Backfill | None:
        b = replication_backfills.c
        row = (
            await self._c.execute(
                select(replication_backfills).where(
                    b.id == backfill_id, b.registry_id == registry_id, b.region == self.region
                )
            )
        ).first()
        return None if row is None else _backfill_of(row)

    async def list_backfills(self, registry_id: str, limit: int) -> list[Backfill]:
        b = replication_backfills.c
        query = (
            select(replication_backfills)
            .where(b.registry_id == registry_id, b.region == self.region)
            .order_by(b.started_at.desc(), b.id)
            .limit(limit)
        )
        return [_backfill_of(row) for row in await self._c.execute(query)]

    async def update_backfill(self, backfill_id: str, **changes: Any) -> None:
        if "failure_codes" in changes:
            changes["failure_codes"] = list(changes["failure_codes"])
        await self._c.execute(
            update(replication_backfills)
            .where(replication_backfills.c.id == backfill_id)
            .values(**changes)
        )

    async def add_backfill_result(self, backfill_id: str, result: BackfillResult) -> None:
        await self._c.execute(
            self._insert(backfill_results).values(
                backfill_id=backfill_id,
                seq=result.seq,
                repository_name=result.repository,
                digest=str(result.digest),
                tag=result.tag,
                status=result.status,
                failure_code=result.failure_code,
            )
        )

    async def backfill_results(
        self, backfill_id: str, *, status: str | None, after: int, limit: int
    ) -> list[BackfillResult]:
        r = backfill_results.c
        query = select(backfill_results).where(r.backfill_id == backfill_id, r.seq > after)
        if status is not None:
            query = query.where(r.status == status)
        query = query.order_by(r.seq).limit(limit)
        return [
            BackfillResult(
                row.seq,
                row.repository_name,
                Digest.parse(row.digest),
                row.tag,
                row.status,
                row.failure_code,
            )
            for row in await self._c.execute(query)
        ]

    async def delete_backfills_ended_before(self, registry_id: str, cutoff: datetime) -> int:
        b = replication_backfills.c
        result = await self._c.execute(
            delete(replication_backfills).where(
                b.registry_id == registry_id,
                b.region == self.region,
                b.ended_at.is_not(None),
                b.ended_at < cutoff,
            )
        )
        return int(result.rowcount or 0)


def _backfill_of(row: Any) -> Backfill:
    return Backfill(
        id=row.id,
        registry_id=row.registry_id,
        destination=Destination(row.destination_region, row.destination_registry_id),
        status=row.status,
        total=row.total,
        completed=row.completed,
        failed=row.failed,
        failure_codes=tuple(row.failure_codes),
        stop_requested=bool(row.stop_requested),
        started_at=row.started_at,
        ended_at=row.ended_at,
        failure_code=row.failure_code,
    )
