"""The metadata contract on SQLite, plus what only the SQLite engine promises."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError

from moorage.domain.digests import Digest
from moorage.ports.metadata import MetadataStore
from moorage.storage.metadata.migrate import upgrade_database
from moorage.storage.metadata.sql.engine import SQLITE_BUSY_TIMEOUT_MS, create_sql_engine
from moorage.storage.metadata.sql.store import SqlMetadataStore, open_sql_metadata_store
from moorage.storage.metadata.sql.tables import metadata

# Before the import below, so that the suite's asserts explain themselves on failure.
pytest.register_assert_rewrite(f"{__package__}.metadata_suite")

from .metadata_suite import REGISTRY, T0, MetadataStoreSuite  # noqa: E402


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'moorage.db'}"


class TestSqliteMetadataStore(MetadataStoreSuite):
    @pytest.fixture
    async def bare_store(self, sqlite_url: str) -> AsyncIterator[SqlMetadataStore]:
        store = await open_sql_metadata_store(sqlite_url)
        try:
            yield store
        finally:
            await store.close()

    async def leftovers(self, store: MetadataStore) -> Mapping[str, int]:
        assert isinstance(store, SqlMetadataStore)
        return await store.row_counts()


async def test_migrations_create_exactly_the_tables_module(sqlite_url: str) -> None:
    await upgrade_database(sqlite_url)
    engine = create_sql_engine(sqlite_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await engine.dispose()
    assert differences == []


async def test_concurrent_upgrades_take_turns(sqlite_url: str, tmp_path: Path) -> None:
    await asyncio.gather(*(upgrade_database(sqlite_url) for _ in range(4)))
    # Connections switching a new database to WAL at once: SQLite answers "database is
    # locked" without waiting; without a retry most of these rounds failed.
    for round_ in range(5):
        fresh = f"sqlite+aiosqlite:///{tmp_path / f'round-{round_}.db'}"
        await asyncio.gather(*(upgrade_database(fresh) for _ in range(8)))
    await upgrade_database(sqlite_url)  # and again at the next start: nothing to do
    store = await open_sql_metadata_store(sqlite_url)
    try:
        assert set(await store.row_counts()) == set(metadata.tables)
    finally:
        await store.close()


async def test_a_first_connection_waits_for_a_lock_held_longer_than_sqlites_default(
    tmp_path: Path,
) -> None:
    """Opening a connection switches a new database to WAL, which needs the database's lock;
    while another process holds it (a first start running migrations), the opening waits
    for the busy timeout, not for Python's 5-second default."""
    path = tmp_path / "fresh.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(6.0, lambda: holder.execute("COMMIT"))
    release.start()
    engine = create_sql_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as connection:
            mode = await connection.exec_driver_sql("PRAGMA journal_mode")
            assert mode.scalar() == "wal"
    finally:
        release.join()
        holder.close()
        await engine.dispose()


async def test_every_connection_gets_the_pragmas(sqlite_url: str) -> None:
    await upgrade_database(sqlite_url)
    engine = create_sql_engine(sqlite_url)
    expected = {
        "journal_mode": "wal",
        "synchronous": 2,  # FULL
        "foreign_keys": 1,
        "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
    }

    async def pragmas() -> dict[str, object]:
        async with engine.connect() as connection:
            values = {}
            for name in expected:
                values[name] = (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar()
            await asyncio.sleep(0.01)  # hold the connection so that the pool opens others
            return values

    try:
        results = await asyncio.gather(*(pragmas() for _ in range(3)))
    finally:
        await engine.dispose()
    assert results == [expected] * 3


async def test_writers_in_two_processes_queue_instead_of_failing(sqlite_url: str) -> None:
    # Two stores on one file stand for two processes: they share no in-process lock, so
    # only BEGIN IMMEDIATE and the busy timeout keep their writers from failing.
    stores = [await open_sql_metadata_store(sqlite_url) for _ in range(2)]

    async def create(store: MetadataStore, name: str) -> None:
        async with store.transaction() as tx:
            assert await tx.get_repository(REGISTRY, name) is None
            await asyncio.sleep(0)
            await tx.create_repository(REGISTRY, name, T0)

    try:
        await asyncio.gather(*(create(stores[i % 2], f"team/app-{i:02d}") for i in range(20)))
        async with stores[0].read() as tx:
            names = [r.name for r in await tx.list_repositories(REGISTRY)]
        assert names == [f"team/app-{i:02d}" for i in range(20)]
    finally:
        for store in stores:
            await store.close()


async def test_naive_datetimes_are_refused(sqlite_url: str) -> None:
    store = await open_sql_metadata_store(sqlite_url)
    try:
        with pytest.raises(StatementError, match="naive datetime"):
            async with store.transaction() as tx:
                await tx.create_repository(REGISTRY, "team/app", datetime(2024, 5, 1))
        async with store.read() as tx:
            assert await tx.list_repositories(REGISTRY) == []
            assert await tx.list_uploads_updated_before(datetime.now(UTC)) == []
    finally:
        await store.close()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///:memory:",
        "sqlite+aiosqlite:///file::memory:?cache=shared&uri=true",
        "sqlite:///moorage.db",
        "mysql+aiomysql://user@localhost/moorage",
        "postgresql+psycopg2://user@localhost/moorage",
    ],
)
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"SQLite|unsupported"):
        create_sql_engine(url)


async def test_referrer_candidates_look_subjects_and_tags_up_by_index(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Garbage collection's referrer query walks the manifests once per page; for each one it
    finds the subject by primary key and the tags by index, never by a scan."""
    store = await open_sql_metadata_store(sqlite_url)
    captured: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        captured.append((args[2], args[3]))

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        async with store.read() as tx:
            await tx.gc_referrer_candidates(T0, after=(1, Digest.of(b"x")), limit=10)
    finally:
        event.remove(Engine, "before_cursor_execute", capture)
        await store.close()
    [(statement, parameters)] = [c for c in captured if "manifests" in c[0]]
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / "moorage.db")) as connection:
        plan = [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)]
    scans = [step for step in plan if step.startswith("SCAN")]
    assert scans == [], plan
    lookups = [step for step in plan if step.startswith("SEARCH")]
    assert any("subject USING INDEX sqlite_autoindex_manifests_1" in s for s in lookups), plan
    assert any("tags USING" in s and "manifest_digest=?" in s for s in lookups), plan
