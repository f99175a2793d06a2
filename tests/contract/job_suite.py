"""The JobRecords contract (``moorage.ports.jobs``), run against every adapter.

Job records live in the metadata transaction, so an adapter runs this suite the way it runs
``metadata_suite``: subclass :class:`JobRecordsSuite`, provide a ``bare_store`` fixture (an
open, empty store) and :meth:`JobRecordsSuite.leftovers`. Every test must leave the store
empty (:func:`forget_everything` helps).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta

import pytest

from moorage.domain.jobs import LEASE_EXPIRED_ERROR, JobState
from moorage.ports.metadata import MetadataStore

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
LEASE = timedelta(seconds=60)
FAR = T0 + timedelta(days=3650)


async def forget_everything(store: MetadataStore) -> None:
    """Finish every pending job (every lease has expired by ``FAR``), then delete them all."""
    async with store.transaction() as tx:
        kinds = {job.kind for job in await tx.list_jobs()}
        for job in await tx.claim_jobs("cleaner", FAR, FAR + LEASE, kinds, limit=10_000):
            await tx.complete_job(job.id, "cleaner", FAR)
        await tx.delete_finished_jobs(FAR + LEASE)
        for schedule in await tx.list_schedules():
            await tx.delete_schedule(schedule.name)


class JobRecordsSuite:
    """The contract. Subclasses provide the ``bare_store`` fixture and :meth:`leftovers`."""

    async def leftovers(self, store: MetadataStore) -> Mapping[str, int]:
        raise NotImplementedError

    @pytest.fixture
    async def store(self, bare_store: MetadataStore) -> AsyncIterator[MetadataStore]:
        yield bare_store
        await forget_everything(bare_store)
        remaining = {kind: n for kind, n in (await self.leftovers(bare_store)).items() if n}
        assert not remaining, f"the test left records in the store: {remaining}"

    # -- enqueue and dedupe -------------------------------------------------------------

    async def test_enqueue_and_get(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            job = await tx.enqueue_job("gc", {"dry_run": True, "n": [1, 2]}, T0, max_attempts=3)
        assert job is not None
        assert job.kind == "gc"
        assert job.payload == {"dry_run": True, "n": [1, 2]}
        assert job.state is JobState.QUEUED
        assert (job.attempts, job.max_attempts) == (0, 3)
        assert job.run_after == job.created_at == job.updated_at == T0
        assert job.lease_owner is job.lease_expires_at is job.last_error is None
        assert job.progress is None
        assert job.finished_at is None
        async with store.read() as tx:
            assert await tx.get_job(job.id) == job
            assert await tx.get_job(job.id + 1000) is None

    async def test_listeners_hear_of_committed_enqueues_only(self, store: MetadataStore) -> None:
        heard: list[str] = []
        store.on_job_enqueued(lambda: heard.append("woken"))
        async with store.transaction() as tx:
            await tx.get_job(1)
        assert heard == []  # nothing enqueued

        async def enqueue_then_fail() -> None:
            async with store.transaction() as tx:
                await tx.enqueue_job("gc", {}, T0)
                raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError):
            await enqueue_then_fail()
        assert heard == []  # enqueued, but never committed
        async with store.in_region("eu-west-1").transaction() as tx:
            await tx.enqueue_job("gc", {}, T0)
        assert heard == ["woken"]  # once per commit, from a regional view too

    async def test_a_dedupe_key_is_unique_among_pending_jobs_only(
        self, store: MetadataStore
    ) -> None:
        async with store.transaction() as tx:
            first = await tx.enqueue_job("gc", {}, T0, dedupe_key="gc:daily")
            again = await tx.enqueue_job("gc", {"other": 1}, T0, dedupe_key="gc:daily")
            unrelated = await tx.enqueue_job("gc", {}, T0, dedupe_key="gc:other")
            keyless = [await tx.enqueue_job("gc", {}, T0) for _ in range(2)]
        assert first is not None
        assert unrelated is not None
        assert again is None
        assert all(job is not None for job in keyless)
        # Still pending while running and while failed; free again once finished.
        for finish in ("fail", "complete"):
            async with store.transaction() as tx:
                [claimed] = await tx.claim_jobs("w1", T0, T0 + LEASE, ["gc"], limit=1)
                assert claimed.id == first.id
                assert await tx.enqueue_job("gc", {}, T0, dedupe_key="gc:daily") is None
                if finish == "fail":
                    await tx.fail_job(first.id, "w1", T0, "Boom", T0)
                    assert await tx.enqueue_job("gc", {}, T0, dedupe_key="gc:daily") is None
                else:
                    await tx.complete_job(first.id, "w1", T0)
        async with store.transaction() as tx:
            later = await tx.enqueue_job("gc", {}, T0, dedupe_key="gc:daily")
        assert later is not None
        assert later.id != first.id

    async def test_concurrent_enqueues_with_one_key_add_one_job(self, store: MetadataStore) -> None:
        async def enqueue() -> bool:
            async with store.transaction() as tx:
                await asyncio.sleep(0)
                return await tx.enqueue_job("gc", {}, T0, dedupe_key="k") is not None

        added = await asyncio.gather(*(enqueue() for _ in range(8)))
        assert added.count(True) == 1
        async with store.read() as tx:
            assert len(await tx.list_jobs()) == 1

    # -- claims -------------------------------------------------------------------------

    async def test_claims_take_due_jobs_oldest_first(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            late = await tx.enqueue_job("gc", {"n": "late"}, T0, run_after=T0 + timedelta(10))
            second = await tx.enqueue_job("gc", {"n": 2}, T0, run_after=T0 + timedelta(seconds=2))
            first = await tx.enqueue_job("gc", {"n": 1}, T0, run_after=T0 + timedelta(seconds=1))
            tie = await tx.enqueue_job("gc", {"n": 3}, T0, run_after=T0 + timedelta(seconds=2))
            other_kind = await tx.enqueue_job("scan", {}, T0)
        assert late
        assert second
        assert first
        assert tie
        assert other_kind
        now = T0 + timedelta(seconds=5)
        async with store.transaction() as tx:
            assert await tx.next_job_due(["gc"]) == first.run_after
            assert await tx.next_job_due(["nothing"]) is None
            claimed = await tx.claim_jobs("w1", now, now + LEASE, ["gc"], limit=2)
            more = await tx.claim_jobs("w2", now, now + LEASE, ["gc"], limit=5)
            none = await tx.claim_jobs("w3", now, now + LEASE, ["gc"], limit=5)
        assert [job.id for job in claimed] == [first.id, second.id]
        assert [job.id for job in more] == [tie.id]  # "late" is not due; "scan" not asked for
        assert none == []
        for job in claimed:
            assert job.state is JobState.RUNNING
            assert job.attempts == 1
            assert job.lease_owner == "w1"
            assert job.lease_expires_at == now + LEASE
            assert job.updated_at == now
        async with store.read() as tx:
            assert await tx.get_job(first.id) == claimed[0]
            running = await tx.list_jobs(state=JobState.RUNNING)
            scans = await tx.list_jobs(kind="scan")
            everything = await tx.list_jobs()
            page = await tx.list_jobs(before_id=everything[1].id, limit=2)
        assert {job.id for job in running} == {first.id, second.id, tie.id}
        assert [job.id for job in scans] == [other_kind.id]
        assert [job.id for job in everything] == sorted(
            (job.id for job in everything), reverse=True
        )
        assert page == everything[2:4]

    async def test_no_claim_without_kinds_or_room(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            await tx.enqueue_job("gc", {}, T0)
            assert await tx.claim_jobs("w1", T0, T0 + LEASE, [], limit=5) == []
            assert await tx.claim_jobs("w1", T0, T0 + LEASE, ["gc"], limit=0) == []
            assert await tx.next_job_due([]) is None

    async def test_an_expired_lease_makes_the_job_claimable_again(
        self, store: MetadataStore
    ) -> None:
        async with store.transaction() as tx:
            job = await tx.enqueue_job("gc", {}, T0)
            assert job is not None
            await tx.claim_jobs("lost", T0, T0 + LEASE, ["gc"])
        async with store.transaction() as tx:
            assert await tx.next_job_due(["gc"]) == T0 + LEASE
            before = T0 + LEASE - timedelta(microseconds=1)
            assert await tx.claim_jobs("w2", before, before + LEASE, ["gc"]) == []
            [again] = await tx.claim_jobs("w2", T0 + LEASE, T0 + 2 * LEASE, ["gc"])
        assert (again.id, again.lease_owner, again.attempts) == (job.id, "w2", 2)
        # The lost worker's late writes change nothing.
        async with store.transaction() as tx:
            assert not await tx.renew_lease(job.id, "lost", FAR, T0)
            assert not await tx.complete_job(job.id, "lost", T0)
            assert await tx.fail_job(job.id, "lost", T0, "late", T0) is None
            assert not await tx.release_job(job.id, "lost", T0)
            assert await tx.get_job(job.id) == again

    async def test_a_job_lost_on_its_last_attempt_goes_dead(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            job = await tx.enqueue_job("gc", {}, T0, max_attempts=2)
            assert job is not None
        now = T0
        async with store.transaction() as tx:
            [claimed] = await tx.claim_jobs("w1", now, now + LEASE, ["gc"])
            assert await tx.fail_job(job.id, "w1", now, "RuntimeError: x", now) is JobState.FAILED
        # The last attempt's worker is lost (or only failed to record the outcome): what
        # became of it is not known, and the first attempt's error no longer says why.
        async with store.transaction() as tx:
            [claimed] = await tx.claim_jobs("w2", now, now + LEASE, ["gc"])
        now += LEASE
        assert claimed.attempts == 2
        async with store.transaction() as tx:
            assert await tx.claim_jobs("w3", now, now + LEASE, ["gc"]) == []
            dead = await tx.get_job(job.id)
        assert dead is not None
        assert dead.state is JobState.DEAD
        assert dead.finished_at == now
        assert dead.lease_owner is None
        assert dead.last_error == LEASE_EXPIRED_ERROR

    async def test_renewing_a_lease_and_recording_progress(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            await tx.enqueue_job("gc", {}, T0)
            [job] = await tx.claim_jobs("w1", T0, T0 + LEASE, ["gc"])
        later = T0 + timedelta(seconds=50)
        async with store.transaction() as tx:
            assert await tx.renew_lease(job.id, "w1", later + LEASE, later)
            assert await tx.renew_lease(
                job.id, "w1", later + LEASE, later, progress={"done": 5, "total": 9}
            )
            assert await tx.renew_lease(job.id, "w1", later + LEASE, later)  # keeps progress
            # The lease lasts past the original expiry: nobody else may claim it.
            assert await tx.claim_jobs("w2", T0 + LEASE, T0 + 2 * LEASE, ["gc"]) == []
            renewed = await tx.get_job(job.id)
        assert renewed is not None
        assert renewed.lease_expires_at == later + LEASE
        assert renewed.progress == {"done": 5, "total": 9}

    # -- outcomes -----------------------------------------------------------------------

    async def test_complete(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            await tx.enqueue_job("gc", {}, T0)
            [job] = await tx.claim_jobs("w1", T0, T0 + LEASE, ["gc"])
            done_at = T0 + timedelta(seconds=3)
            assert await tx.complete_job(job.id, "w1", done_at)
            assert not await tx.complete_job(job.id, "w1", done_at)  # no lease any more
            done = await tx.get_job(job.id)
            # Final: never claimed again.
            assert await tx.claim_jobs("w2", FAR, FAR + LEASE, ["gc"]) == []
        assert done is not None
        assert done.state is JobState.SUCCEEDED
        assert done.finished_at == done.updated_at == done_at
        assert done.lease_owner is done.lease_expires_at is None

    async def test_failures_retry_until_max_attempts_then_dead(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            job = await tx.enqueue_job("gc", {}, T0, max_attempts=3)
            assert job is not None
        now = T0
        states = []
        for attempt in range(1, 4):
            async with store.transaction() as tx:
                [claimed] = await tx.claim_jobs("w1", now, now + LEASE, ["gc"])
                assert claimed.attempts == attempt
                retry_at = now + timedelta(seconds=10 * attempt)
                states.append(await tx.fail_job(job.id, "w1", now, f"Boom: {attempt}", retry_at))
                failed = await tx.get_job(job.id)
                assert failed is not None
                assert failed.last_error == f"Boom: {attempt}"
                assert failed.lease_owner is None
                if attempt < 3:
                    assert failed.run_after == retry_at
                    assert failed.finished_at is None
                    # Not due before its retry time.
                    early = retry_at - timedelta(microseconds=1)
                    assert await tx.claim_jobs("w1", early, early + LEASE, ["gc"]) == []
                    assert await tx.next_job_due(["gc"]) == retry_at
                else:
                    assert failed.finished_at == now
                now = retry_at
        assert states == [JobState.FAILED, JobState.FAILED, JobState.DEAD]
        async with store.transaction() as tx:
            assert await tx.claim_jobs("w1", FAR, FAR + LEASE, ["gc"]) == []
            assert [j.id for j in await tx.list_jobs(state=JobState.DEAD)] == [job.id]

    async def test_release_gives_the_job_back_uncounted(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            await tx.enqueue_job("gc", {}, T0)
            [job] = await tx.claim_jobs("w1", T0, T0 + LEASE, ["gc"])
            stopped_at = T0 + timedelta(seconds=1)
            assert await tx.release_job(job.id, "w1", stopped_at)
            released = await tx.get_job(job.id)
            [again] = await tx.claim_jobs("w2", stopped_at, stopped_at + LEASE, ["gc"])
        assert released is not None
        assert released.state is JobState.QUEUED
        assert released.attempts == 0
        assert released.run_after == stopped_at
        assert released.lease_owner is None
        assert again.attempts == 1

    async def test_delete_finished_jobs(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            for _ in range(3):
                await tx.enqueue_job("gc", {}, T0, max_attempts=1)
            a, b, c = await tx.claim_jobs("w1", T0, T0 + LEASE, ["gc"], limit=3)
            await tx.complete_job(a.id, "w1", T0)
            await tx.fail_job(b.id, "w1", T0 + timedelta(hours=1), "Boom", T0)
            pending = await tx.enqueue_job("gc", {}, T0)
            assert pending is not None
            assert await tx.delete_finished_jobs(T0) == 0  # strictly before
            assert await tx.delete_finished_jobs(T0 + timedelta(seconds=1)) == 1
            assert await tx.delete_finished_jobs(FAR) == 1
            assert {j.id for j in await tx.list_jobs()} == {c.id, pending.id}

    # -- schedules ----------------------------------------------------------------------

    async def test_ensure_schedule_creates_then_updates(self, store: MetadataStore) -> None:
        day = timedelta(days=1)
        async with store.transaction() as tx:
            created = await tx.ensure_schedule("lifecycle", "lifecycle.run", {"a": 1}, day, T0)
            later = T0 + timedelta(hours=1)
            kept = await tx.ensure_schedule("lifecycle", "lifecycle.run", {"a": 2}, day, later)
            shorter = await tx.ensure_schedule(
                "gc", "gc.run", {}, day, T0, first_run_at=T0 + 2 * day
            )
            shortened = await tx.ensure_schedule("gc", "gc.run", {}, timedelta(hours=1), T0)
            assert [s.name for s in await tx.list_schedules()] == ["gc", "lifecycle"]
            assert await tx.get_schedule("lifecycle") == kept
            assert await tx.get_schedule("nope") is None
        assert (created.kind, created.payload, created.interval) == ("lifecycle.run", {"a": 1}, day)
        assert created.next_run_at == T0
        assert kept.payload == {"a": 2}
        assert kept.next_run_at == T0
        assert shorter.next_run_at == T0 + 2 * day
        assert shortened.interval == timedelta(hours=1)
        assert shortened.next_run_at == T0 + timedelta(hours=1)
        with pytest.raises(ValueError, match="at least one second"):
            async with store.transaction() as tx:
                await tx.ensure_schedule("x", "k", {}, timedelta(milliseconds=10), T0)

    async def test_due_schedules_advance_once(self, store: MetadataStore) -> None:
        hour = timedelta(hours=1)
        async with store.transaction() as tx:
            await tx.ensure_schedule("b", "k", {}, hour, T0, first_run_at=T0 + hour)
            await tx.ensure_schedule("a", "k", {}, hour, T0)
            await tx.ensure_schedule("c", "k", {}, hour, T0, first_run_at=T0 + 3 * hour)
        now = T0 + hour
        async with store.transaction() as tx:
            due = await tx.due_schedules(now)
            assert [s.name for s in due] == ["a", "b"]
            assert await tx.advance_schedule("a", T0, T0 + hour)
            # A second process that read the same due time loses the race.
            assert not await tx.advance_schedule("a", T0, T0 + hour)
            assert not await tx.advance_schedule("gone", T0, T0 + hour)
            assert [s.name for s in await tx.due_schedules(now)] == ["a", "b"]
            assert await tx.advance_schedule("a", T0 + hour, T0 + 2 * hour)
            assert [s.name for s in await tx.due_schedules(now)] == ["b"]
            assert await tx.delete_schedule("b")
            assert not await tx.delete_schedule("b")
