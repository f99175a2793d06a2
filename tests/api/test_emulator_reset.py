"""Emulator mode's ``POST /_moorage/reset`` with the background workers running, as in
``moorage serve --emulator``: user data goes, the job runner's schedules stay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from moorage.app import Registry, build_web_app, open_registry
from moorage.config import Settings
from moorage.domain.jobs import Job, JobState
from moorage.ports.clock import system_clock
from moorage.workers.runner import JobProgress, Runner
from moorage.workers.wiring import TEST_HANDLERS_ENV, Workers, start_workers
from tests.api.oci import Client, push_blob

BLOCK_JOB = "test-block"


class _Blocker:
    """The handler of BLOCK_JOB: blocks until released, counts cancellations."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = 0

    async def __call__(self, job: Job, progress: JobProgress) -> None:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


_blocker = _Blocker()


def register_blocker(runner: Runner) -> None:
    """Named by TEST_HANDLERS_ENV: the runner's hook for extra job kinds in tests."""
    runner.register(BLOCK_JOB, _blocker)


@pytest.fixture
async def emulator(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Registry, Workers]]:
    global _blocker
    _blocker = _Blocker()
    monkeypatch.setenv(TEST_HANDLERS_ENV, f"{__name__}:register_blocker")
    # A one-second lease: the runner notices a wiped job within a heartbeat (a third of it).
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        emulator=True,
        create_on_push=("*",),
        job_lease_seconds=1,
    )
    registry = await open_registry(settings)
    workers = await start_workers(registry, required=True)
    assert workers is not None
    try:
        yield registry, workers
    finally:
        _blocker.release.set()
        await workers.stop(5)
        await registry.close()


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while not await condition():  # noqa: ASYNC110  (store state has no event to await)
            await asyncio.sleep(0.02)


async def _enqueue(registry: Registry, kind: str) -> Job:
    async with registry.metadata.transaction() as tx:
        job = await tx.enqueue_job(kind, {}, system_clock())
    assert job is not None
    return job


async def test_reset_keeps_the_schedules_and_stops_jobs_of_wiped_data(
    emulator: tuple[Registry, Workers],
) -> None:
    registry, workers = emulator

    async with TestClient(TestServer(build_web_app(registry))) as client:
        typed: Client = client
        await push_blob(typed, "team/app", b"user data")
        async with registry.metadata.read() as tx:
            assert await tx.list_repositories(registry.settings.emulator_registry_id)
        in_flight = await _enqueue(registry, BLOCK_JOB)
        workers.runner.wake()
        await asyncio.wait_for(_blocker.started.wait(), 10)
        # The runner has fired both schedules by now: they are next due in a day.
        async with registry.metadata.read() as tx:
            schedules = await tx.list_schedules()
        assert {schedule.name for schedule in schedules} == {"gc", "lifecycle"}

        response = await client.post("/_moorage/reset")
        assert response.status == 200

        # Straight after the reset, not at the runner's next housekeeping (minutes later).
        async with registry.metadata.read() as tx:
            assert await tx.list_schedules() == schedules
            assert await tx.list_repositories(registry.settings.emulator_registry_id) == []
            assert await tx.get_job(in_flight.id) is None

    # The job whose row went with the reset is abandoned at its next heartbeat ...
    async def abandoned() -> bool:
        return _blocker.cancelled == 1 and in_flight.id not in workers.runner.running_jobs

    await _until(abandoned)

    # ... and the runner carries on with new work.
    _blocker.release.set()
    after = await _enqueue(registry, BLOCK_JOB)
    workers.runner.wake()

    async def succeeded() -> bool:
        async with registry.metadata.read() as tx:
            job = await tx.get_job(after.id)
        return job is not None and job.state is JobState.SUCCEEDED

    await _until(succeeded)
