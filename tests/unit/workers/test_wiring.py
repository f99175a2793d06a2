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


async def test_garbage_collection_is_a_scheduled_job(tmp_path: Path) -> None:
    """Every process with workers keeps a periodic ``gc`` job (gc_interval; 0 turns it off),
    and the job runs the collector, recording what it freed as its progress."""
    from datetime import timedelta

    from moorage.app import wire
    from moorage.config import Settings
    from moorage.storage.blobs import build_blob_store
    from moorage.storage.metadata.sql.store import open_sql_metadata_store
    from moorage.workers.wiring import (
        GC_JOB,
        GC_SCHEDULE,
        build_runner,
        collect_garbage_job,
        declare_schedules,
    )

    settings = Settings(data_dir=tmp_path, gc_interval=3600.0, lifecycle_interval=0.0)
    metadata = await open_sql_metadata_store(settings.resolved_database_url)
    registry = wire(settings, metadata, build_blob_store("memory"))
    try:
        runner = build_runner(registry)
        await declare_schedules(runner, registry)
        async with metadata.read() as tx:
            schedule = await tx.get_schedule(GC_SCHEDULE)
        assert schedule is not None
        assert schedule.kind == GC_JOB
        assert schedule.interval == timedelta(hours=1)

        recorded: list[dict[str, object]] = []

        async def progress(report: dict[str, object]) -> None:
            recorded.append(report)

        assert GC_JOB in runner.kinds
        await collect_garbage_job(registry)(None, progress)  # type: ignore[arg-type]
        assert recorded[-1]["blobs_deleted"] == 0
        assert recorded[-1]["dry_run"] is False

        off = wire(
            Settings(data_dir=tmp_path, gc_interval=0.0, lifecycle_interval=0.0),
            metadata,
            registry.blob_store,
        )
        await declare_schedules(build_runner(off), off)
        async with metadata.read() as tx:
            assert await tx.get_schedule(GC_SCHEDULE) is None
    finally:
        await registry.close()
