"""The lifecycle records contract on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from moorage.ports.metadata import MetadataStore
from moorage.storage.metadata.sql.store import SqlMetadataStore, open_sql_metadata_store

# Before the import below, so that the suite's asserts explain themselves on failure.
pytest.register_assert_rewrite(f"{__package__}.lifecycle_suite")

from .lifecycle_suite import LifecycleRecordsSuite  # noqa: E402


class TestSqliteLifecycleRecords(LifecycleRecordsSuite):
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
