"""The job records contract on SQLite, plus claims from two stores (two processes) at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from moorage.ports.metadata import MetadataStore
from moorage.storage.metadata.sql.store import SqlMetadataStore, open_sql_metadata_store

# Before the import below, so that the suite's asserts explain themselves on failure.
pytest.register_assert_rewrite(f"{__package__}.job_suite")

from .job_suite import LEASE, T0, JobRecordsSuite, forget_everything  # noqa: E402


class TestSqliteJobRecords(JobRecordsSuite):
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


async def test_claimers_in_two_processes_never_share_a_job(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'moorage.db'}"
    stores = [await open_sql_metadata_store(url) for _ in range(2)]
    try:
        async with stores[0].transaction() as tx:
            for n in range(40):
                await tx.enqueue_job("gc", {"n": n}, T0)

        async def claim_all(store: MetadataStore, owner: str) -> list[int]:
            mine: list[int] = []
            while True:
                async with store.transaction() as tx:
                    claimed = await tx.claim_jobs(owner, T0, T0 + LEASE, ["gc"], limit=3)
                if not claimed:
                    return mine
                mine += [job.id for job in claimed]
                await asyncio.sleep(0)

        results = await asyncio.gather(*(claim_all(stores[i % 2], f"w{i}") for i in range(4)))
        claimed = [job_id for result in results for job_id in result]
        assert len(claimed) == len(set(claimed)) == 40
        await forget_everything(stores[0])
    finally:
        for store in stores:
            await store.close()
