"""Settings of the workers, and the one-process-per-SQLite-database lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from moorage.config import ConfigError, load_settings
from moorage.workers.wiring import WorkerLock


def test_workers_run_by_default_and_can_be_turned_off() -> None:
    assert load_settings({}, environ={}).workers is True
    assert load_settings({}, environ={"MOORAGE_WORKERS": "false"}).workers is False
    assert load_settings({"workers": False}, environ={"MOORAGE_WORKERS": "true"}).workers is False
    settings = load_settings({}, environ={"MOORAGE_JOB_LEASE_SECONDS": "2.5"})
    assert settings.job_lease_seconds == 2.5
    with pytest.raises(ConfigError, match="job_lease_seconds must be at least 1"):
        load_settings({}, environ={"MOORAGE_JOB_LEASE_SECONDS": "0.5"})


def test_one_holder_of_a_sqlite_databases_worker_lock(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'moorage.db'}"
    first = WorkerLock.acquire(url)
    assert first is not None
    assert WorkerLock.acquire(url) is None  # flock: also excludes another open file here
    assert (tmp_path / "moorage.db.workers.lock").exists()
    first.release()
    again = WorkerLock.acquire(url)
    assert again is not None
    again.release()


def test_postgresql_needs_no_worker_lock() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    locks = [WorkerLock.acquire(url), WorkerLock.acquire(url)]
    assert all(lock is not None for lock in locks)
