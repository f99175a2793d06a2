"""The lifecycle records contract on PostgreSQL (the server at 127.0.0.1:5432; see
``tests/postgres.py``). One database for the module, emptied after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import pytest
import pytest_asyncio

from moorage.ports.metadata import MetadataStore
from moorage.storage.metadata.sql.store import SqlMetadataStore, open_sql_metadata_store
from tests.postgres import delete_everything, throwaway_database

# Before the import below, so that the suite's asserts explain themselves on failure.
pytest.register_assert_rewrite(f"{__package__}.lifecycle_suite")

from .lifecycle_suite import LifecycleRecordsSuite  # noqa: E402

pytestmark = pytest.mark.postgres


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def postgres_url() -> AsyncIterator[str]:
    async with throwaway_database() as url:
        yield url


class TestPostgresLifecycleRecords(LifecycleRecordsSuite):
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
