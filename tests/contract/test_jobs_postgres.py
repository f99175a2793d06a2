"""The job records contract on PostgreSQL (the server at 127.0.0.1:5432; see
``tests/postgres.py``), plus concurrent claimers on separate connections: ``FOR UPDATE SKIP
LOCKED`` must give every job to exactly one of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta

import pytest
import pytest_asyncio

from moorage.domain.jobs import JobSchedule, JobState, next_run
from moorage.ports.metadata import MetadataStore
from moorage.storage.metadata.sql.store import SqlMetadataStore, open_sql_metadata_store
from tests.postgres import delete_everything, throwaway_database

# Before the import below, so that the suite's asserts explain themselves on failure.
pytest.register_assert_rewrite(f"{__package__}.job_suite")

from .job_suite import LEASE, T0, JobRecordsSuite  # noqa: E402

pytestmark = pytest.mark.postgres


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def postgres_url() -> AsyncIterator[str]:
    async with throwaway_database() as url:
        yield url


@pytest.fixture
async def postgres_store(postgres_url: str) -> AsyncIterator[SqlMetadataStore]:
    store = await open_sql_metadata_store(postgres_url)
    try:
        yield store
    finally:
        await store.close()
        # The database outlives the test: a failed test must not fail the next ones.
        await delete_everything(postgres_url)


class TestPostgresJobRecords(JobRecordsSuite):
    @pytest.fixture
    async def bare_store(self, postgres_store: SqlMetadataStore) -> SqlMetadataStore:
        return postgres_store

    async def leftovers(self, store: MetadataStore) -> Mapping[str, int]:
        assert isinstance(store, SqlMetadataStore)
        return await store.row_counts()


async def test_concurrent_claimers_skip_locked_jobs_and_never_share_one(
    postgres_url: str, postgres_store: SqlMetadataStore
) -> None:
    jobs = 200
    async with postgres_store.transaction() as tx:
        for n in range(jobs):
            await tx.enqueue_job("gc", {"n": n}, T0)
    # Separate stores (pools) stand for separate processes.
    stores = [await open_sql_metadata_store(postgres_url) for _ in range(4)]

    async def claim_all(store: MetadataStore, owner: str) -> list[int]:
        mine: list[int] = []
        while True:
            async with store.transaction() as tx:
                claimed = await tx.claim_jobs(owner, T0, T0 + LEASE, ["gc"], limit=4)
                # Hold the row locks a moment, so that the others must skip them.
                await asyncio.sleep(0.005)
            if not claimed:
                return mine
            mine += [job.id for job in claimed]

    try:
        results = await asyncio.gather(*(claim_all(stores[i % 4], f"w{i}") for i in range(12)))
    finally:
        for store in stores:
            await store.close()
    claimed = [job_id for result in results for job_id in result]
    assert len(claimed) == len(set(claimed)) == jobs
    assert sum(1 for result in results if result) > 1  # the work was shared
    async with postgres_store.read() as tx:
        running = await tx.list_jobs(state=JobState.RUNNING)
    assert {job.id for job in running} == set(claimed)
    assert all(job.attempts == 1 for job in running)


async def test_a_claim_does_not_wait_for_a_job_another_transaction_holds(
    postgres_url: str, postgres_store: SqlMetadataStore
) -> None:
    async with postgres_store.transaction() as tx:
        first = await tx.enqueue_job("gc", {}, T0)
        second = await tx.enqueue_job("gc", {}, T0)
    assert first is not None
    assert second is not None
    other = await open_sql_metadata_store(postgres_url)
    try:
        async with postgres_store.transaction() as holder:
            [held] = await holder.claim_jobs("w1", T0, T0 + LEASE, ["gc"])
            # Uncommitted: the other claimer skips the locked row instead of blocking.
            async with asyncio.timeout(5), other.transaction() as tx:
                [got] = await tx.claim_jobs("w2", T0, T0 + LEASE, ["gc"])
        assert (held.id, got.id) == (first.id, second.id)
    finally:
        await other.close()


async def test_processes_firing_one_schedule_at_once_enqueue_one_run_per_interval(
    postgres_url: str, postgres_store: SqlMetadataStore
) -> None:
    """Processes (separate stores, so separate connections) fire the same schedule at the
    same moment, as ``Scheduler.fire_due`` does: all read it due, then each moves it on and
    enqueues a run in one transaction. The compare-and-set on the due time must let exactly
    one of them enqueue each run; the runs carry no dedupe key here, which would hide a
    second enqueue."""
    hour = timedelta(hours=1)
    async with postgres_store.transaction() as tx:
        await tx.ensure_schedule("gc-hourly", "gc", {}, hour, T0)
    stores = [await open_sql_metadata_store(postgres_url) for _ in range(2)]

    async def due(store: MetadataStore, now: datetime) -> list[JobSchedule]:
        async with store.read() as tx:
            return await tx.due_schedules(now)

    async def fire(store: MetadataStore, schedule: JobSchedule, now: datetime) -> bool:
        async with store.transaction() as tx:
            following = next_run(schedule.next_run_at, schedule.interval, now)
            if not await tx.advance_schedule(schedule.name, schedule.next_run_at, following):
                return False
            # Hold the row lock a moment, so that the other process must wait for it.
            await asyncio.sleep(0.005)
            await tx.enqueue_job(schedule.kind, schedule.payload, now)
            return True

    processes = [stores[i % 2] for i in range(4)]
    rounds = 25
    try:
        for n in range(rounds):
            now = T0 + n * hour
            seen = await asyncio.gather(*(due(store, now) for store in processes))
            assert all([s.name for s in schedules] == ["gc-hourly"] for schedules in seen)
            won = await asyncio.gather(
                *(
                    fire(store, schedules[0], now)
                    for store, schedules in zip(processes, seen, strict=True)
                )
            )
            assert sum(won) == 1, f"round {n}: {won}"
    finally:
        for store in stores:
            await store.close()
    async with postgres_store.read() as tx:
        assert len(await tx.list_jobs(kind="gc")) == rounds
        schedule = await tx.get_schedule("gc-hourly")
    assert schedule is not None
    assert schedule.next_run_at == T0 + rounds * hour
