"""The metadata contract on PostgreSQL, plus what only the PostgreSQL engine promises.

Needs the server at 127.0.0.1:5432 (trust auth, user ``postgres``, database ``test``); CI
starts it, and these tests fail rather than skip when it is down. Each session works in a
database of its own, created here and dropped at the end, so that runs never collide.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import pytest
import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import String, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from moorage.ports.metadata import MetadataStore
from moorage.storage.metadata.migrate import upgrade_database
from moorage.storage.metadata.sql.engine import create_sql_engine
from moorage.storage.metadata.sql.store import SqlMetadataStore, open_sql_metadata_store
from moorage.storage.metadata.sql.tables import metadata
from tests.postgres import delete_everything, throwaway_database

# Before the import below, so that the suite's asserts explain themselves on failure.
pytest.register_assert_rewrite(f"{__package__}.metadata_suite")

from .metadata_suite import REGISTRY, T0, MetadataStoreSuite, digest_of  # noqa: E402

pytestmark = pytest.mark.postgres


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def postgres_url() -> AsyncIterator[str]:
    async with throwaway_database() as url:
        yield url


@pytest.fixture
async def fresh_postgres_url() -> AsyncIterator[str]:
    """A database of its own, not yet migrated, for tests of the upgrade itself."""
    async with throwaway_database() as url:
        yield url


class TestPostgresMetadataStore(MetadataStoreSuite):
    @pytest.fixture
    async def bare_store(self, postgres_url: str) -> AsyncIterator[SqlMetadataStore]:
        store = await open_sql_metadata_store(postgres_url)
        try:
            yield store
        finally:
            await store.close()
            # The database outlives the test: a failed test must not fail the next ones.
            await delete_everything(postgres_url)

    async def leftovers(self, store: MetadataStore) -> Mapping[str, int]:
        assert isinstance(store, SqlMetadataStore)
        return await store.row_counts()


async def test_migrations_create_exactly_the_tables_module(fresh_postgres_url: str) -> None:
    await upgrade_database(fresh_postgres_url)
    engine = create_sql_engine(fresh_postgres_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
            # Alembic does not compare collations: check the bytewise ones by hand.
            reflected, declared = await connection.run_sync(_collations)
    finally:
        await engine.dispose()
    assert differences == []
    assert reflected == declared


Collations = dict[tuple[str, str], str | None]


def _collations(connection: Connection) -> tuple[Collations, Collations]:
    """Per (table, column): the collation in the database, and the one tables.py declares."""
    inspector = inspect(connection)
    reflected = {
        (table, column["name"]): getattr(column["type"], "collation", None)
        for table in metadata.tables
        for column in inspector.get_columns(table)
    }
    declared: Collations = {}
    for table in metadata.tables.values():
        for column in table.columns:
            impl = column.type.dialect_impl(connection.dialect)
            declared[table.name, column.name] = impl.collation if isinstance(impl, String) else None
    return reflected, declared


async def test_concurrent_upgrades_take_turns(fresh_postgres_url: str) -> None:
    # Without the advisory lock, the losers fail creating the same tables.
    await asyncio.gather(*(upgrade_database(fresh_postgres_url) for _ in range(4)))
    await upgrade_database(fresh_postgres_url)  # and again at the next start: nothing to do
    store = await open_sql_metadata_store(fresh_postgres_url)
    try:
        assert set(await store.row_counts()) == set(metadata.tables)
    finally:
        await store.close()


async def test_read_transactions_are_read_only(postgres_url: str) -> None:
    store = await open_sql_metadata_store(postgres_url)
    try:
        with pytest.raises(DBAPIError, match="read-only"):
            async with store.read() as tx:
                await tx.put_blob(digest_of("blob"), 4, T0)
        async with store.read() as tx:
            assert await tx.get_blob(digest_of("blob")) is None
            assert await tx.list_repositories(REGISTRY) == []
    finally:
        await store.close()
