"""Background jobs in real processes: ``moorage worker``, workers inside ``moorage serve``,
``moorage jobs list``, and a job that survives the SIGKILL of its worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from moorage.domain.jobs import Job
from moorage.storage.metadata.sql.store import open_sql_metadata_store
from moorage.workers.wiring import TEST_HANDLERS_ENV
from tests.e2e.conftest import StartServer
from tests.e2e.job_plugin import DIR_ENV, GATED
from tests.e2e.server import MOORAGE, run_cli, wait_for

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 2


@dataclass
class Setup:
    data_dir: Path
    job_dir: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"sqlite+aiosqlite:///{(self.data_dir / 'moorage.db').resolve()}"

    def events(self) -> list[list[str]]:
        log = self.job_dir / "log"
        return [line.split() for line in log.read_text().splitlines()] if log.exists() else []

    def enqueue(self, kind: str = GATED) -> Job:
        async def enqueue() -> Job:
            store = await open_sql_metadata_store(self.url)
            try:
                async with store.transaction() as tx:
                    job = await tx.enqueue_job(kind, {}, datetime.now(UTC))
            finally:
                await store.close()
            assert job is not None
            return job

        return asyncio.run(enqueue())

    def jobs_list(self) -> list[list[str]]:
        listed = run_cli("jobs", "list", "--data-dir", str(self.data_dir), env=self.env)
        assert listed.returncode == 0, listed.stderr
        return [line.split() for line in listed.stdout.splitlines()[1:]]


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    job_dir = tmp_path / "jobs"
    job_dir.mkdir()
    env = {
        TEST_HANDLERS_ENV: "tests.e2e.job_plugin:register",
        DIR_ENV: str(job_dir),
        "MOORAGE_JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        "MOORAGE_SHUTDOWN_TIMEOUT": "1",
        # Only the tests' own jobs: no scheduled lifecycle run or collection beside them.
        "MOORAGE_LIFECYCLE_INTERVAL": "0",
        "MOORAGE_GC_INTERVAL": "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    data_dir = tmp_path / "data"
    migrated = run_cli("migrate", "--data-dir", str(data_dir), env=env)
    assert migrated.returncode == 0, migrated.stderr
    return Setup(data_dir, job_dir, env)


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_worker(setup: Setup, tmp_path: Path) -> Iterator[type[WorkerProcess]]:
    started: list[WorkerProcess] = []

    class Start(WorkerProcess):
        def __new__(cls) -> WorkerProcess:  # type: ignore[misc]
            log_path = tmp_path / f"worker-{len(started)}.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [*MOORAGE, "worker", "--data-dir", str(setup.data_dir)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **setup.env},
                )
            worker = WorkerProcess(process, log_path)
            started.append(worker)
            return worker

    yield Start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(10)


def test_a_job_survives_the_kill_of_its_worker_mid_run(
    setup: Setup, start_worker: type[WorkerProcess]
) -> None:
    job = setup.enqueue()
    first = start_worker()
    wait_for(lambda: len(setup.events()) == 1, 30, "the first worker to start the job")
    first.process.kill()  # SIGKILL, mid-run: no chance to give the lease back
    first.process.wait(10)
    (setup.job_dir / "gate").touch()
    second = start_worker()
    wait_for(lambda: len(setup.events()) == 3, 30, "the second worker to finish the job")
    (start1, start2, done) = setup.events()
    assert start1[:3] == ["start", str(job.id), "1"]
    assert start1[3] == str(first.process.pid)
    assert start2 == ["start", str(job.id), "2", str(second.process.pid)]
    assert done == ["done", str(job.id), "2", str(second.process.pid)]
    # Exactly once: nothing runs it again after more than a lease.
    wait_for(lambda: setup.jobs_list()[0][2] == "succeeded", 10, "the job to succeed")
    asyncio.run(asyncio.sleep(1.5 * LEASE_SECONDS))
    assert len(setup.events()) == 3
    [row] = setup.jobs_list()
    assert row[:4] == [str(job.id), GATED, "succeeded", "2/5"]
    second.process.send_signal(signal.SIGTERM)
    assert second.process.wait(30) == 0, second.log()


def test_a_stopped_worker_gives_its_job_back(
    setup: Setup, start_worker: type[WorkerProcess]
) -> None:
    job = setup.enqueue()
    worker = start_worker()
    wait_for(lambda: len(setup.events()) == 1, 30, "the worker to start the job")
    worker.process.send_signal(signal.SIGTERM)
    # The job does not finish within shutdown_timeout (1 s): it is given back, not counted.
    assert worker.process.wait(30) == 0, worker.log()
    [row] = setup.jobs_list()
    assert row[:4] == [str(job.id), GATED, "queued", "0/5"]


def test_one_worker_process_per_sqlite_database(
    setup: Setup, start_worker: type[WorkerProcess]
) -> None:
    first = start_worker()
    wait_for(lambda: "running" in first.log(), 30, "the first worker to run")
    second = start_worker()
    assert second.process.wait(30) == 2
    assert "another process runs the background jobs" in second.log()
    # Logging before it may be on (migrations); the error itself is one line, the last.
    assert second.log().strip().splitlines()[-1].startswith("moorage: error: another process")
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(30) == 0, first.log()


def test_serve_runs_jobs_unless_told_not_to(setup: Setup, start_server: StartServer) -> None:
    job = setup.enqueue()
    (setup.job_dir / "gate").touch()
    quiet = start_server(data_dir=setup.data_dir, env=setup.env, extra_args=["--no-workers"])
    asyncio.run(asyncio.sleep(1.5))
    assert setup.events() == []
    assert quiet.stop() == 0, quiet.log()
    server = start_server(data_dir=setup.data_dir, env=setup.env)
    wait_for(lambda: len(setup.events()) == 2, 30, "the server to run the job")
    wait_for(lambda: setup.jobs_list()[0][2] == "succeeded", 10, "the job to succeed")
    assert [row[:3] for row in setup.jobs_list()] == [[str(job.id), GATED, "succeeded"]]
    assert server.stop() == 0, server.log()


def test_jobs_list_filters_and_reports_errors_in_one_line(setup: Setup) -> None:
    listed = run_cli(
        "jobs", "list", "--state", "dead", "--data-dir", str(setup.data_dir), env=setup.env
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == [
        "ID",
        "KIND",
        "STATE",
        "ATTEMPTS",
        "RUN",
        "AFTER",
        "PROGRESS",
        "LAST",
        "ERROR",
    ]
    bad = run_cli("jobs", "list", "--database-url", "mysql://nope", env=setup.env)
    assert bad.returncode != 0
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
