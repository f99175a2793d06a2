"""Where a contract suite finds its SQL store: mix one of these into the suite's test class.

``SqliteStore`` opens a fresh database per test; ``PostgresStore`` uses the module's
``postgres_url`` (``conftest.py``: one throwaway database per module) and empties it after
each test, so that a failed test does not fail the next ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from moorage.ports.metadata import MetadataStore
from moorage.storage.metadata.sql.store import SqlMetadataStore, open_sql_metadata_store
from tests.postgres import delete_everything


class SqliteStore:
    @pytest.fixture
    async def bare_store(self, tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
        store = await open_sql_metadata_store(f"sqlite+aiosqlite:///{tmp_path / 'moorage.db'}")
        try:
            yield store
        finally:
            await store.close()

    async def leftovers(self, store: MetadataStore) -> Mapping[str, int]:
        assert isinstance(store, SqlMetadataStore)
        return await store.row_counts()


class PostgresStore:
    @pytest.fixture
    async def bare_store(self, postgres_url: str) -> AsyncIterator[SqlMetadataStore]:
        store = await open_sql_metadata_store(postgres_url)
        try:
            yield store
        finally:
            await store.close()
            await delete_everything(postgres_url)

    async def leftovers(self, store: MetadataStore) -> Mapping[str, int]:
        assert isinstance(store, SqlMetadataStore)
        return await store.row_counts()
