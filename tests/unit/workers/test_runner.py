"""The job runner with a fake clock, on a real SQLite store (a file per test)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from moorage.domain.jobs import Job, JobState, error_text, next_run, retry_delay
from moorage.ports.metadata import MetadataStore
from moorage.storage.metadata.sql.jobs import SqlJobRecords
from moorage.storage.metadata.sql.store import open_sql_metadata_store
from moorage.workers import runner as runner_module
from moorage.workers.runner import JobProgress, Runner, RunnerSettings

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SETTINGS = RunnerSettings(
    lease=timedelta(seconds=60),
    heartbeat=timedelta(hours=1),  # no heartbeat unless a test asks for one
    retry_base=timedelta(seconds=30),
    retry_cap=timedelta(minutes=5),
)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MetadataStore]:
    opened = await open_sql_metadata_store(f"sqlite+aiosqlite:///{tmp_path / 'moorage.db'}")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def enqueue(store: MetadataStore, kind: str = "noop", **options: object) -> Job:
    async with store.transaction() as tx:
        job = await tx.enqueue_job(kind, {"n": 1}, T0, **options)  # type: ignore[arg-type]
    assert job is not None
    return job


async def get(store: MetadataStore, job_id: int) -> Job:
    async with store.read() as tx:
        job = await tx.get_job(job_id)
    assert job is not None
    return job


class Blocker:
    """A handler that records its calls and blocks until released."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.calls: list[Job] = []
        self.cancelled = 0
        self.completed = 0

    async def __call__(self, job: Job, progress: JobProgress) -> None:
        self.calls.append(job)
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.completed += 1


async def test_a_job_runs_once_and_succeeds(store: MetadataStore, clock: FakeClock) -> None:
    calls: list[Job] = []

    async def handle(job: Job, progress: JobProgress) -> None:
        calls.append(job)

    runner = Runner(store, clock, SETTINGS, owner="w1")
    runner.register("noop", handle)
    job = await enqueue(store)
    clock.advance(timedelta(seconds=1))
    assert [j.id for j in await runner.run_due()] == [job.id]
    assert await runner.run_due() == []
    assert [(c.id, c.attempts, c.payload) for c in calls] == [(job.id, 1, {"n": 1})]
    done = await get(store, job.id)
    assert done.state is JobState.SUCCEEDED
    assert done.finished_at == clock.now


async def test_jobs_of_unregistered_kinds_are_left_alone(
    store: MetadataStore, clock: FakeClock
) -> None:
    runner = Runner(store, clock, SETTINGS)
    runner.register("noop", Blocker())
    with pytest.raises(ValueError, match="registered already"):
        runner.register("noop", Blocker())
    job = await enqueue(store, "scan")
    assert await runner.run_due() == []
    assert (await get(store, job.id)).state is JobState.QUEUED


async def test_failures_back_off_exponentially_then_go_dead(
    store: MetadataStore, clock: FakeClock
) -> None:
    attempts: list[int] = []

    async def fail(job: Job, progress: JobProgress) -> None:
        attempts.append(job.attempts)
        raise RuntimeError(f"registry unreachable (attempt {job.attempts})\nsecond line")

    runner = Runner(store, clock, SETTINGS)
    runner.register("noop", fail)
    job = await enqueue(store, max_attempts=4)
    delays = []
    for _ in range(3):
        await runner.run_due()
        failed = await get(store, job.id)
        assert failed.state is JobState.FAILED
        delays.append(failed.run_after - clock.now)
        clock.advance(failed.run_after - clock.now - timedelta(seconds=1))
        assert await runner.run_due() == []  # not due yet
        clock.advance(timedelta(seconds=1))
    assert delays == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)]
    await runner.run_due()
    dead = await get(store, job.id)
    assert dead.state is JobState.DEAD
    assert dead.attempts == 4
    assert dead.last_error == "RuntimeError: registry unreachable (attempt 4)"
    clock.advance(timedelta(days=1))
    assert await runner.run_due() == []
    assert attempts == [1, 2, 3, 4]


async def test_a_crashed_workers_job_runs_again_after_its_lease_expires(
    store: MetadataStore, clock: FakeClock
) -> None:
    crashed, survivor = Blocker(), Blocker()
    first = Runner(store, clock, SETTINGS, owner="crashed")
    first.register("noop", crashed)
    second = Runner(store, clock, SETTINGS, owner="survivor")
    second.register("noop", survivor)
    job = await enqueue(store)
    assert [j.id for j in await first.tick()] == [job.id]
    await crashed.started.wait()  # and never renews its lease: as good as dead
    clock.advance(timedelta(seconds=59))
    assert await second.tick() == []
    clock.advance(timedelta(seconds=1))
    [again] = await second.tick()
    assert (again.id, again.attempts, again.lease_owner) == (job.id, 2, "survivor")
    survivor.release.set()
    await second.stop()
    assert (await get(store, job.id)).state is JobState.SUCCEEDED
    # The first worker wakes up late: its outcome is discarded, the job stays done once.
    crashed.release.set()
    await first.stop()
    done = await get(store, job.id)
    assert done.state is JobState.SUCCEEDED
    assert done.attempts == 2
    assert done.lease_owner is None


async def test_the_heartbeat_keeps_the_lease(store: MetadataStore, clock: FakeClock) -> None:
    blocker = Blocker()
    settings = RunnerSettings(lease=timedelta(seconds=60), heartbeat=timedelta(seconds=0.02))
    runner = Runner(store, clock, settings, owner="w1")
    runner.register("noop", blocker)
    other = Runner(store, clock, SETTINGS, owner="w2")
    other.register("noop", Blocker())
    job = await enqueue(store)
    await runner.tick()
    await blocker.started.wait()
    for _ in range(5):  # five minutes of fake time, the lease renewed as it passes
        clock.advance(timedelta(seconds=50))
        await _until(lambda: _lease_after(store, job.id, clock.now))
        assert await other.tick() == []
    blocker.release.set()
    await runner.stop()
    assert (await get(store, job.id)).state is JobState.SUCCEEDED


async def test_a_worker_that_loses_its_lease_cancels_the_handler(
    store: MetadataStore, clock: FakeClock
) -> None:
    stalled = Blocker()
    settings = RunnerSettings(lease=timedelta(seconds=60), heartbeat=timedelta(seconds=0.3))
    runner = Runner(store, clock, settings, owner="stalled")
    runner.register("noop", stalled)
    other = Runner(store, clock, SETTINGS, owner="other")
    winner = Blocker()
    other.register("noop", winner)
    job = await enqueue(store)
    await runner.tick()
    await stalled.started.wait()
    clock.advance(timedelta(seconds=61))  # before the first heartbeat: the lease expired
    assert len(await other.tick()) == 1
    await _until(lambda: _true(stalled.cancelled == 1))
    await _until(lambda: _true(runner.running_jobs == frozenset()))
    winner.release.set()
    await other.stop()
    assert (await get(store, job.id)).state is JobState.SUCCEEDED
    await runner.stop()


@pytest.mark.parametrize("outcome", ["complete_job", "fail_job"])
async def test_an_outcome_that_cannot_be_recorded_is_retried_after_the_lease(
    store: MetadataStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, outcome: str
) -> None:
    """Recording the success (or the failure) raises: the job keeps its lease, so it is not
    lost but runs again once the lease expires, and the runner goes on with other jobs."""
    attempts: list[tuple[int, int]] = []

    async def handle(job: Job, progress: JobProgress) -> None:
        attempts.append((job.id, job.attempts))
        if outcome == "fail_job" and (job.id, job.attempts) == (first_id, 1):
            raise RuntimeError("the registry is down")

    async def unrecordable(*args: object, **kwargs: object) -> None:
        raise OSError("database unreachable")

    runner = Runner(store, clock, SETTINGS, owner="w1")
    runner.register("noop", handle)
    job = await enqueue(store, max_attempts=3)
    first_id = job.id
    with monkeypatch.context() as outage:
        outage.setattr(SqlJobRecords, outcome, unrecordable)
        assert [j.id for j in await runner.run_due()] == [job.id]
    unrecorded = await get(store, job.id)
    assert (unrecorded.state, unrecorded.lease_owner) == (JobState.RUNNING, "w1")
    # The runner goes on: another job runs and succeeds.
    other = await enqueue(store)
    assert [j.id for j in await runner.run_due()] == [other.id]
    assert (await get(store, other.id)).state is JobState.SUCCEEDED
    clock.advance(SETTINGS.lease)
    assert [j.id for j in await runner.run_due()] == [job.id]
    done = await get(store, job.id)
    assert (done.state, done.attempts) == (JobState.SUCCEEDED, 2)
    assert attempts == [(job.id, 1), (other.id, 1), (job.id, 2)]


async def test_stop_lets_a_job_finish_within_the_grace_period(
    store: MetadataStore, clock: FakeClock
) -> None:
    async def quick(job: Job, progress: JobProgress) -> None:
        await asyncio.sleep(0.05)

    runner = Runner(store, clock, SETTINGS)
    runner.register("noop", quick)
    job = await enqueue(store)
    runner.start()
    await _until(lambda: _true(bool(runner.running_jobs)))
    await runner.stop(grace=10)
    assert (await get(store, job.id)).state is JobState.SUCCEEDED


async def test_stop_abandons_a_job_past_the_grace_period(
    store: MetadataStore, clock: FakeClock
) -> None:
    blocker = Blocker()
    runner = Runner(store, clock, SETTINGS)
    runner.register("noop", blocker)
    job = await enqueue(store)
    runner.start()
    await blocker.started.wait()
    await runner.stop(grace=0.05)
    assert blocker.cancelled == 1
    released = await get(store, job.id)
    assert released.state is JobState.QUEUED
    assert released.attempts == 0  # the abandoned attempt does not count
    assert released.lease_owner is None
    # The next worker runs it at once.
    again = Runner(store, clock, SETTINGS)
    done: list[int] = []

    async def handle(job: Job, progress: JobProgress) -> None:
        done.append(job.attempts)

    again.register("noop", handle)
    await again.run_due()
    assert done == [1]


async def test_concurrency_bounds_the_jobs_claimed(store: MetadataStore, clock: FakeClock) -> None:
    blocker = Blocker()
    runner = Runner(store, clock, RunnerSettings(concurrency=2, heartbeat=timedelta(hours=1)))
    runner.register("noop", blocker)
    jobs = [await enqueue(store) for _ in range(3)]
    assert [j.id for j in await runner.tick()] == [jobs[0].id, jobs[1].id]
    assert await runner.tick() == []
    blocker.release.set()
    await runner.run_due()
    assert len(blocker.calls) == 3


async def test_progress_is_recorded(
    store: MetadataStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "PROGRESS_INTERVAL", 0.01)
    reported = asyncio.Event()
    release = asyncio.Event()

    async def handle(job: Job, progress: JobProgress) -> None:
        await progress({"done": 1, "total": 3})
        await progress({"done": 2, "total": 3})
        reported.set()
        await release.wait()
        await progress({"done": 3, "total": 3})

    runner = Runner(store, clock, SETTINGS)
    runner.register("noop", handle)
    job = await enqueue(store)
    await runner.tick()
    await reported.wait()
    await _until(lambda: _progress_is(store, job.id, {"done": 2, "total": 3}))
    release.set()
    await runner.stop()
    done = await get(store, job.id)
    assert done.state is JobState.SUCCEEDED
    assert done.progress == {"done": 3, "total": 3}


async def test_a_schedule_enqueues_one_run_per_interval(
    store: MetadataStore, clock: FakeClock
) -> None:
    runs: list[dict[str, object]] = []

    async def handle(job: Job, progress: JobProgress) -> None:
        runs.append(dict(job.payload))

    # Two processes declare and fire the same schedule.
    runners = [Runner(store, clock, SETTINGS) for _ in range(2)]
    for runner in runners:
        runner.register("gc", handle)
        await runner.scheduler.ensure("gc-nightly", "gc", {"dry_run": False}, timedelta(hours=24))
    fired = await asyncio.gather(*(runner.scheduler.fire_due() for runner in runners))
    assert sorted(len(jobs) for jobs in fired) == [0, 1]
    for runner in runners:
        await runner.run_due()
    assert runs == [{"dry_run": False}]
    clock.advance(timedelta(hours=23))
    assert await runners[0].run_due() == []
    clock.advance(timedelta(hours=1))
    await runners[1].run_due()
    assert len(runs) == 2
    # Missed runs (the server was down three days) are not caught up: one run, then on.
    clock.advance(timedelta(days=3))
    await runners[0].run_due()
    assert len(runs) == 3
    async with store.read() as tx:
        schedule = await tx.get_schedule("gc-nightly")
    assert schedule is not None
    assert schedule.next_run_at == clock.now + timedelta(hours=24)


async def test_a_run_still_pending_absorbs_the_next(store: MetadataStore, clock: FakeClock) -> None:
    runner = Runner(store, clock, SETTINGS)  # no handler for "gc": runs stay queued
    await runner.scheduler.ensure("gc-hourly", "gc", {}, timedelta(hours=1))
    assert len(await runner.scheduler.fire_due()) == 1
    clock.advance(timedelta(hours=1))
    assert await runner.scheduler.fire_due() == []
    async with store.read() as tx:
        assert len(await tx.list_jobs(kind="gc")) == 1


async def test_a_deleted_schedule_is_restored(store: MetadataStore, clock: FakeClock) -> None:
    runner = Runner(store, clock, SETTINGS)
    await runner.scheduler.ensure("gc-hourly", "gc", {}, timedelta(hours=1))
    async with store.transaction() as tx:
        await tx.delete_schedule("gc-hourly")
    await runner.scheduler.restore()
    async with store.read() as tx:
        assert [s.name for s in await tx.list_schedules()] == ["gc-hourly"]


async def test_a_wipe_keeps_the_schedules(store: MetadataStore, clock: FakeClock) -> None:
    runner = Runner(store, clock, SETTINGS)
    await runner.scheduler.ensure("gc-hourly", "gc", {}, timedelta(hours=1))
    clock.advance(timedelta(minutes=1))
    assert len(await runner.scheduler.fire_due()) == 1
    async with store.read() as tx:
        before = await tx.list_schedules()
    await store.wipe()
    async with store.read() as tx:
        assert await tx.list_schedules() == before
        assert await tx.list_jobs() == []


async def test_old_finished_jobs_are_deleted(store: MetadataStore, clock: FakeClock) -> None:
    async def handle(job: Job, progress: JobProgress) -> None:
        pass

    runner = Runner(store, clock, RunnerSettings(retention=timedelta(days=7)))
    runner.register("noop", handle)
    job = await enqueue(store)
    await runner.run_due()
    clock.advance(timedelta(days=8))
    runner._last_housekeeping = None  # as if the housekeeping interval had passed
    await runner.tick()
    async with store.read() as tx:
        assert await tx.get_job(job.id) is None


def test_retry_delay_doubles_up_to_the_cap() -> None:
    base, cap = timedelta(seconds=30), timedelta(minutes=5)
    delays = [retry_delay(n, base, cap).total_seconds() for n in range(0, 8)]
    assert delays == [30, 30, 60, 120, 240, 300, 300, 300]
    assert retry_delay(10_000, base, cap) == cap


def test_next_run_skips_missed_runs() -> None:
    hour = timedelta(hours=1)
    assert next_run(T0, hour, T0 + timedelta(minutes=5)) == T0 + hour
    assert next_run(T0, hour, T0 + 5 * hour) == T0 + 6 * hour


def test_error_text_keeps_the_type_and_first_line_bounded() -> None:
    assert error_text(ValueError("bad\nsecret trace")) == "ValueError: bad"
    assert error_text(TimeoutError()) == "TimeoutError"
    assert len(error_text(RuntimeError("x" * 10_000))) == 500


async def _until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``condition`` (a store read, or a flag another task sets) for up to 5 s."""
    async with asyncio.timeout(5.0):
        while not await condition():  # noqa: ASYNC110  (store state has no event to await)
            await asyncio.sleep(0.005)


async def _true(value: bool) -> bool:
    return value


async def _lease_after(store: MetadataStore, job_id: int, when: datetime) -> bool:
    job = await get(store, job_id)
    return job.lease_expires_at is not None and job.lease_expires_at > when


async def _progress_is(store: MetadataStore, job_id: int, progress: dict[str, int]) -> bool:
    return (await get(store, job_id)).progress == progress


async def test_a_worker_that_cannot_renew_stops_the_job_before_its_lease_expires(
    store: MetadataStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database is unreachable from this worker for longer than the lease (by the clock
    the workers share): it stops the handler and records nothing, so that the worker that
    claims the job next never runs it at the same time."""
    first = Blocker()
    settings = RunnerSettings(lease=timedelta(seconds=60), heartbeat=timedelta(seconds=0.02))
    runner = Runner(store, clock, settings, owner="w1")
    runner.register("noop", first)
    job = await enqueue(store)
    await runner.tick()
    await first.started.wait()

    def unreachable() -> object:
        raise OSError("database unreachable")

    with monkeypatch.context() as outage:
        outage.setattr(store, "transaction", unreachable)
        await asyncio.sleep(0.1)  # failed heartbeats well within the lease: the job runs on
        assert (first.cancelled, runner.running_jobs) == (0, frozenset({job.id}))
        clock.advance(timedelta(seconds=54))
        await _until(lambda: _true(first.cancelled == 1))
        await _until(lambda: _true(runner.running_jobs == frozenset()))
    lost = await get(store, job.id)
    assert (lost.state, lost.lease_owner, lost.attempts) == (JobState.RUNNING, "w1", 1)
    other = Runner(store, clock, SETTINGS, owner="w2")
    second = Blocker()
    other.register("noop", second)
    assert await other.tick() == []  # the lease has not expired yet
    clock.advance(timedelta(seconds=6))
    [again] = await other.tick()
    assert (again.id, again.attempts, again.lease_owner) == (job.id, 2, "w2")
    second.release.set()
    await other.stop()
    await runner.stop()
    assert (await get(store, job.id)).state is JobState.SUCCEEDED


async def test_a_renewal_that_hangs_stops_the_job_before_its_lease_expires(
    store: MetadataStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Measured by the monotonic clock too: a renewal that never answers (the injected clock
    stands still here) stops the job at LEASE_MARGIN of the lease."""
    loop = asyncio.get_running_loop()
    started = asyncio.Event()
    cancelled_at: list[float] = []

    async def handle(job: Job, progress: JobProgress) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled_at.append(loop.time())
            raise

    settings = RunnerSettings(lease=timedelta(seconds=1), heartbeat=timedelta(seconds=0.1))
    runner = Runner(store, clock, settings, owner="w1")
    runner.register("noop", handle)
    job = await enqueue(store)
    claimed_at = loop.time()
    await runner.tick()
    await started.wait()

    @contextlib.asynccontextmanager
    async def hanging() -> AsyncIterator[object]:
        await asyncio.Event().wait()
        yield None  # pragma: no cover

    monkeypatch.setattr(store, "transaction", hanging)
    await _until(lambda: _true(runner.running_jobs == frozenset()))
    [when] = cancelled_at
    assert when - claimed_at < 1.0  # the lease, which nobody renewed, is not over yet
    monkeypatch.undo()
    lost = await get(store, job.id)
    assert (lost.state, lost.lease_owner) == (JobState.RUNNING, "w1")
    await runner.stop()
