"""The ReplicationRecords port on SQL: a mixin of the store's transaction (``store.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from moorage.domain.digests import Digest
from moorage.domain.replication import (
    Destination,
    ReplicationConfiguration,
    ReplicationStatus,
    configuration_from_document,
    configuration_to_document,
)
from moorage.ports.replication import ImageReplication
from moorage.storage.metadata.sql.tables import (
    image_replications,
    manifests,
    replicated_tags,
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
