"""The PublicRecords port on SQL: a mixin of the store's transaction (``store.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, select, update

from moorage.domain.public import CatalogData, PublicRegistry
from moorage.storage.metadata.sql.tables import public_catalog_data, public_registries

if TYPE_CHECKING:
    from moorage.storage.metadata.sql.store import _InsertFactory, _Statements

_r = public_registries.c
_d = public_catalog_data.c


def _registry_of(row: Row[Any]) -> PublicRegistry:
    return PublicRegistry(
        registry_id=row.registry_id,
        alias=row.alias,
        created_at=row.created_at,
        display_name=row.display_name,
        description=row.description,
        logo=row.logo,
        verified=row.verified,
    )


class SqlPublicRecords:
    """Public registry records on the transaction's connection ``_c``; ``_insert`` is the
    dialect's INSERT. Both are set by ``_SqlTransaction.__init__``. Public registries are
    global (no region): an account has one."""

    _c: _Statements
    _insert: _InsertFactory

    async def get_public_registry(self, registry_id: str) -> PublicRegistry | None:
        query = select(public_registries).where(_r.registry_id == registry_id)
        row = (await self._c.execute(query)).first()
        return None if row is None else _registry_of(row)

    async def public_registry_by_alias(self, alias: str) -> PublicRegistry | None:
        row = (await self._c.execute(select(public_registries).where(_r.alias == alias))).first()
        return None if row is None else _registry_of(row)

    async def insert_public_registry(self, registry: PublicRegistry) -> bool:
        statement = (
            self._insert(public_registries)
            .values(
                registry_id=registry.registry_id,
                alias=registry.alias,
                display_name=registry.display_name,
                description=registry.description,
                logo=registry.logo,
                verified=registry.verified,
                created_at=registry.created_at,
            )
            .on_conflict_do_nothing()
        )
        return bool((await self._c.execute(statement)).rowcount)

    async def update_public_registry(self, registry: PublicRegistry) -> None:
        await self._c.execute(
            update(public_registries)
            .where(_r.registry_id == registry.registry_id)
            .values(
                display_name=registry.display_name,
                description=registry.description,
                logo=registry.logo,
                verified=registry.verified,
            )
        )

    async def list_public_registries(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[PublicRegistry]:
        query = select(public_registries).order_by(_r.registry_id)
        if after is not None:
            query = query.where(_r.registry_id > after)
        if limit is not None:
            query = query.limit(limit)
        return [_registry_of(row) for row in await self._c.execute(query)]

    async def get_catalog_data(self, repository_id: int) -> CatalogData | None:
        query = select(public_catalog_data).where(_d.repository_id == repository_id)
        row = (await self._c.execute(query)).first()
        if row is None:
            return None
        return CatalogData(
            description=row.description,
            architectures=tuple(row.architectures),
            operating_systems=tuple(row.operating_systems),
            categories=tuple(row.categories),
            about_text=row.about_text,
            usage_text=row.usage_text,
            logo=row.logo,
        )

    async def put_catalog_data(self, repository_id: int, data: CatalogData, now: datetime) -> None:
        values = {
            "description": data.description,
            "architectures": list(data.architectures),
            "operating_systems": list(data.operating_systems),
            "categories": list(data.categories),
            "about_text": data.about_text,
            "usage_text": data.usage_text,
            "logo": data.logo,
            "updated_at": now,
        }
        statement = (
            self._insert(public_catalog_data)
            .values(repository_id=repository_id, **values)
            .on_conflict_do_update(index_elements=["repository_id"], set_=values)
        )
        await self._c.execute(statement)
