"""The GalleryRecords port on SQL: a mixin of the store's transaction (``store.py``).

The badge filters match the JSON text of the catalog's lists (``"x86-64"`` with its quotes),
which SQLite stores as text and PostgreSQL casts to it: one portable query, exact per
entry, and an index scan is not needed at the gallery's sizes (10,000 repositories).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, String, and_, cast, func, or_, select, tuple_

from moorage.domain.digests import Digest
from moorage.domain.public import PUBLIC_NAMESPACE
from moorage.ports.gallery import GalleryEntry, GalleryTag
from moorage.storage.metadata.sql.rows import chunks, stored_digest
from moorage.storage.metadata.sql.tables import (
    manifests,
    public_catalog_data,
    public_registries,
    repositories,
    tags,
)

if TYPE_CHECKING:
    from moorage.storage.metadata.sql.store import _Statements

_r, _p, _c = repositories.c, public_registries.c, public_catalog_data.c


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _contains(column: Any, text: str) -> Any:
    return func.lower(column).like(f"%{_like_escaped(text.lower())}%", escape="\\")


def _entry_query() -> Any:
    return (
        select(
            _r.id,
            _r.registry_id,
            _r.name,
            _r.created_at,
            _p.alias,
            _p.display_name,
            _p.verified,
            _c.description,
            _c.architectures,
            _c.operating_systems,
            _c.logo.is_not(None).label("has_logo"),
        )
        .select_from(repositories)
        .join(public_registries, _p.registry_id == _r.registry_id)
        .outerjoin(public_catalog_data, _c.repository_id == _r.id)
        .where(_r.region == PUBLIC_NAMESPACE)
    )


def _entry_of(row: Row[Any]) -> GalleryEntry:
    return GalleryEntry(
        repository_id=row.id,
        registry_id=row.registry_id,
        alias=row.alias,
        name=row.name,
        created_at=row.created_at,
        description=row.description or "",
        architectures=tuple(row.architectures or ()),
        operating_systems=tuple(row.operating_systems or ()),
        has_logo=bool(row.has_logo),
        display_name=row.display_name,
        verified=row.verified,
    )


class SqlGalleryRecords:
    """Gallery views on the transaction's connection ``_c`` (set by ``_SqlTransaction``)."""

    _c: _Statements

    async def search_public_repositories(
        self,
        *,
        text: str = "",
        architectures: Sequence[str] = (),
        operating_systems: Sequence[str] = (),
        after: tuple[str, str] | None = None,
        limit: int = 24,
    ) -> list[GalleryEntry]:
        query = _entry_query()
        if text:
            query = query.where(
                or_(
                    _contains(_p.alias, text),
                    _contains(_r.name, text),
                    _contains(func.coalesce(_c.description, ""), text),
                )
            )
        for column, wanted in (
            (_c.architectures, architectures),
            (_c.operating_systems, operating_systems),
        ):
            for badge in wanted:
                pattern = f"%{_like_escaped(json.dumps(badge))}%"
                query = query.where(cast(column, String).like(pattern, escape="\\"))
        if after is not None:
            query = query.where(tuple_(_p.alias, _r.name) > tuple_(*after))
        query = query.order_by(_p.alias, _r.name).limit(limit)
        return [_entry_of(row) for row in await self._c.execute(query)]

    async def public_repository_entry(self, alias: str, name: str) -> GalleryEntry | None:
        query = _entry_query().where(and_(_p.alias == alias, _r.name == name))
        row = (await self._c.execute(query)).first()
        return None if row is None else _entry_of(row)

    async def public_repository_tags(
        self, repository_id: int, *, limit: int = 100
    ) -> list[GalleryTag]:
        m = manifests.c
        query = (
            select(
                tags.c.name,
                tags.c.updated_at,
                m.digest,
                m.media_type,
                m.payload,
                m.pushed_at,
                m.pull_count,
            )
            .select_from(tags)
            .join(
                manifests,
                and_(m.repository_id == tags.c.repository_id, m.digest == tags.c.manifest_digest),
            )
            .where(tags.c.repository_id == repository_id)
            .order_by(tags.c.updated_at.desc(), tags.c.name)
            .limit(limit)
        )
        return [
            GalleryTag(
                tag=row.name,
                tagged_at=row.updated_at,
                digest=stored_digest(row.digest),
                media_type=row.media_type,
                payload=row.payload,
                pushed_at=row.pushed_at,
                pull_count=row.pull_count,
            )
            for row in await self._c.execute(query)
        ]

    async def manifest_payloads(
        self, repository_id: int, digests: Sequence[Digest]
    ) -> dict[Digest, bytes]:
        found: dict[Digest, bytes] = {}
        for chunk in chunks(sorted({str(d) for d in digests})):
            query = select(manifests.c.digest, manifests.c.payload).where(
                manifests.c.repository_id == repository_id, manifests.c.digest.in_(chunk)
            )
            for row in await self._c.execute(query):
                found[stored_digest(row.digest)] = row.payload
        return found
