"""The AdvisoryRecords port on SQL: a mixin of the store's transaction (``store.py``).

``SqlAdvisoryRecords`` runs its statements on ``self._c``, the transaction's connection, like
``lifecycle.py``. Two choices carry the design:

- a **put** reads the stored documents of the batch's ids first (one IN query per 500) and
  writes only what changed: new records are inserted, changed ones updated in place (their id,
  and so their index rows' foreign key, stays) after their index rows are deleted, unchanged ones
  are not touched. A re-import of the same database is then reads only, and ``written_at``
  moves only for records a rescan has to look at;
- a **lookup** groups the keys by ecosystem and asks ``ecosystem = ? AND name IN (...)``, which
  walks the primary key of ``advisory_packages`` on both dialects (a row-value IN would not on
  SQLite), then decodes each advisory once however many keys it is listed under.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, select, update

from moorage.ports.advisories import AdvisorySource, advisory_fits
from moorage.scanning.advisories.codec import decode, encode
from moorage.scanning.advisories.keys import PackageKey, package_key
from moorage.scanning.advisories.model import Advisory
from moorage.storage.metadata.sql.rows import chunks, stored_time
from moorage.storage.metadata.sql.tables import advisories, advisory_imports, advisory_packages

if TYPE_CHECKING:
    from moorage.storage.metadata.sql.store import _InsertFactory, _Statements

# Reference data, not account data: the emulator's reset (``SqlMetadataStore.wipe``) keeps it,
# as a test suite resetting between tests should not have to import the database again.
ADVISORY_TABLES = frozenset({advisory_imports, advisories, advisory_packages})

_UPDATE_ADVISORY = (
    update(advisories)
    .where(advisories.c.id == bindparam("row_id"))
    .values(
        modified=bindparam("new_modified"),
        written_at=bindparam("new_written_at"),
        document=bindparam("new_document"),
    )
)


class SqlAdvisoryRecords:
    """Advisory records on the transaction's connection ``_c``; ``_insert`` is the dialect's
    INSERT. Both are set by ``_SqlTransaction.__init__``."""

    _c: _Statements
    _insert: _InsertFactory

    # -- imports ------------------------------------------------------------------------

    async def begin_advisory_import(self, source: str, location: str, at: datetime) -> int:
        statement = (
            advisory_imports.insert()
            .values(source=source, location=location, started_at=at)
            .returning(advisory_imports.c.id)
        )
        return int((await self._c.execute(statement)).scalar_one())

    async def put_advisories(
        self, import_id: int, advisories_: Sequence[Advisory], at: datetime | None = None
    ) -> None:
        query = select(advisory_imports.c.source, advisory_imports.c.started_at).where(
            advisory_imports.c.id == import_id
        )
        started = (await self._c.execute(query)).first()
        if started is None:
            raise ValueError(f"advisory import {import_id} is not known")
        source: str = started.source
        written_at = started.started_at if at is None else at
        # Stored as "which database": the import's stable name, not the file the record was
        # read from (a path that changes with every download would make every record differ).
        latest: dict[str, Advisory] = {}
        for advisory in advisories_:
            if (problem := advisory_fits(advisory)) is not None:
                raise ValueError(f"advisory {advisory.id[:80]}: {problem}")
            latest[advisory.id] = replace(advisory, source=source)
        documents = {advisory_id: encode(a) for advisory_id, a in latest.items()}

        stored: dict[str, tuple[int, str]] = {}
        for chunk in chunks(documents):
            query = select(advisories.c.advisory_id, advisories.c.id, advisories.c.document).where(
                advisories.c.source == source, advisories.c.advisory_id.in_(chunk)
            )
            for row in await self._c.execute(query):
                stored[row.advisory_id] = (row.id, row.document)

        changed = {
            stored[advisory_id][0]: advisory_id
            for advisory_id, document in documents.items()
            if advisory_id in stored and stored[advisory_id][1] != document
        }
        new = [advisory_id for advisory_id in documents if advisory_id not in stored]
        for row_chunk in chunks(changed):
            await self._c.execute(
                delete(advisory_packages).where(advisory_packages.c.advisory_id.in_(row_chunk))
            )
        if changed:
            await self._c.execute(
                _UPDATE_ADVISORY,
                [
                    {
                        "row_id": row_id,
                        "new_modified": _modified(latest[advisory_id]),
                        "new_written_at": written_at,
                        "new_document": documents[advisory_id],
                    }
                    for row_id, advisory_id in changed.items()
                ],
            )
        row_ids = dict(changed)
        if new:
            insert = advisories.insert().returning(advisories.c.id, advisories.c.advisory_id)
            parameters = [
                {
                    "source": source,
                    "advisory_id": advisory_id,
                    "modified": _modified(latest[advisory_id]),
                    "written_at": written_at,
                    "document": documents[advisory_id],
                }
                for advisory_id in new
            ]
            for row in await self._c.execute(insert, parameters):
                row_ids[row.id] = row.advisory_id
        index_rows = [
            {"ecosystem": key.ecosystem, "name": key.name, "advisory_id": row_id}
            for row_id, advisory_id in row_ids.items()
            for key in _keys(latest[advisory_id])
        ]
        if index_rows:
            await self._c.execute(advisory_packages.insert(), index_rows)

    async def finish_advisory_import(
        self, import_id: int, at: datetime, records: int, errors: int
    ) -> None:
        statement = (
            update(advisory_imports)
            .where(advisory_imports.c.id == import_id)
            .values(finished_at=at, records=records, errors=errors)
        )
        await self._c.execute(statement)

    async def forget_advisory_source(self, source: str) -> int:
        # Index rows go by cascade (SQLite runs with foreign_keys=ON).
        removed = await self._c.execute(delete(advisories).where(advisories.c.source == source))
        await self._c.execute(delete(advisory_imports).where(advisory_imports.c.source == source))
        return int(removed.rowcount)

    async def withdraw_advisories(
        self, source: str, kept: Collection[str]
    ) -> tuple[int, set[PackageKey]]:
        kept_ids = set(kept)
        stored = select(advisories.c.id, advisories.c.advisory_id).where(
            advisories.c.source == source
        )
        withdrawn = [
            row.id for row in await self._c.execute(stored) if row.advisory_id not in kept_ids
        ]
        keys: set[PackageKey] = set()
        for chunk in chunks(withdrawn):
            listed = select(advisory_packages.c.ecosystem, advisory_packages.c.name).where(
                advisory_packages.c.advisory_id.in_(chunk)
            )
            keys.update(
                PackageKey(row.ecosystem, row.name) for row in await self._c.execute(listed)
            )
            # Index rows go by cascade (SQLite runs with foreign_keys=ON).
            await self._c.execute(delete(advisories).where(advisories.c.id.in_(chunk)))
        return len(withdrawn), keys

    # -- lookups ------------------------------------------------------------------------

    async def advisories_for(self, keys: Iterable[PackageKey]) -> dict[PackageKey, list[Advisory]]:
        names_by_ecosystem: dict[str, set[str]] = {}
        for key in keys:
            names_by_ecosystem.setdefault(key.ecosystem, set()).add(key.name)
        decoded: dict[int, tuple[str, str, Advisory]] = {}
        found: dict[PackageKey, list[int]] = {}
        for ecosystem, names in names_by_ecosystem.items():
            for chunk in chunks(sorted(names)):
                query = (
                    select(
                        advisory_packages.c.name,
                        advisories.c.id,
                        advisories.c.source,
                        advisories.c.advisory_id,
                        advisories.c.document,
                    )
                    .join(advisories, advisories.c.id == advisory_packages.c.advisory_id)
                    .where(
                        advisory_packages.c.ecosystem == ecosystem,
                        advisory_packages.c.name.in_(chunk),
                    )
                )
                for row in await self._c.execute(query):
                    if row.id not in decoded:
                        decoded[row.id] = (row.source, row.advisory_id, decode(row.document))
                    found.setdefault(PackageKey(ecosystem, row.name), []).append(row.id)
        return {
            key: [decoded[i][2] for i in sorted(ids, key=lambda i: decoded[i][:2])]
            for key, ids in found.items()
        }

    async def advisory_sources(self) -> list[AdvisorySource]:
        latest = (
            select(func.max(advisory_imports.c.id))
            .group_by(advisory_imports.c.source)
            .scalar_subquery()
        )
        imports = select(advisory_imports).where(advisory_imports.c.id.in_(latest))
        totals = select(
            advisories.c.source,
            func.count().label("records"),
            func.max(advisories.c.modified).label("newest"),
        ).group_by(advisories.c.source)
        stored: dict[str, Any] = {row.source: row for row in await self._c.execute(totals)}
        sources = []
        for row in await self._c.execute(imports):
            total = stored.get(row.source)
            sources.append(
                AdvisorySource(
                    name=row.source,
                    location=row.location,
                    started_at=row.started_at,
                    finished_at=row.finished_at,
                    records=0 if total is None else int(total.records),
                    errors=row.errors or 0,
                    newest_modified=None if total is None else _aware(total.newest),
                )
            )
        return sorted(sources, key=lambda source: source.name)

    async def advisories_updated_at(self) -> datetime | None:
        latest: datetime | None = await self._c.scalar(
            select(func.max(advisory_imports.c.finished_at))
        )
        return _aware(latest)

    async def keys_changed_since(self, at: datetime) -> set[PackageKey]:
        query = (
            select(advisory_packages.c.ecosystem, advisory_packages.c.name)
            .join(advisories, advisories.c.id == advisory_packages.c.advisory_id)
            .where(advisories.c.written_at >= at)
            .distinct()
        )
        return {PackageKey(row.ecosystem, row.name) for row in await self._c.execute(query)}


def _modified(advisory: Advisory) -> datetime | None:
    # Databases built for publishing leave "modified" out or as a placeholder (the Go vulndb's
    # 0001-01-01, read as None): the publication date is then the best freshness there is.
    return advisory.modified or advisory.published


def _keys(advisory: Advisory) -> set[PackageKey]:
    """Where the advisory is indexed: each affected package that names its ecosystem."""
    return {
        package_key(entry.ecosystem, entry.package)
        for entry in advisory.affected
        if entry.ecosystem and entry.package
    }


def _aware(value: datetime | str | None) -> datetime | None:
    """An aggregate of a time column, in UTC whichever form the dialect answers it in."""
    return None if value is None else stored_time(value)
