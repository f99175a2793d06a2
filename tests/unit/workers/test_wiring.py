"""Settings of the workers, and the one-process-per-SQLite-database lock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from moorage.config import ConfigError, load_settings
from moorage.domain.digests import Digest
from moorage.workers.wiring import WorkerLock

if TYPE_CHECKING:
    from moorage.app import Registry


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
        kept = await seed_blob(registry, b"within its grace period")
        await collect_garbage_job(registry)(None, progress)  # type: ignore[arg-type]
        assert recorded[-1]["blobs_deleted"] == 0
        assert await registry.blob_store.stat(kept) is not None
        unreferenced = await seed_blob(registry, b"unreferenced")
        await collect_garbage_job(
            registry, grace_period=timedelta(0), upload_grace_period=timedelta(0)
        )(None, progress)  # type: ignore[arg-type]
        assert recorded[-1]["blobs_deleted"] == 2
        assert recorded[-1]["dry_run"] is False
        for digest in (kept, unreferenced):
            assert await registry.blob_store.stat(digest) is None
            async with metadata.read() as tx:
                assert await tx.get_blob(digest) is None

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


async def test_the_garbage_collection_job_removes_referrers_of_deleted_images(
    tmp_path: Path,
) -> None:
    from moorage.app import wire
    from moorage.config import Settings
    from moorage.domain.models import ManifestRecord
    from moorage.storage.blobs import build_blob_store
    from moorage.storage.metadata.sql.store import open_sql_metadata_store
    from moorage.workers.wiring import collect_garbage_job

    settings = Settings(data_dir=tmp_path, gc_interval=0.0, lifecycle_interval=0.0)
    metadata = await open_sql_metadata_store(settings.resolved_database_url)
    registry = wire(settings, metadata, build_blob_store("memory"))
    payload = b'{"signature": "of a deleted image"}'
    try:
        async with metadata.transaction() as tx:
            repository = await tx.create_repository("000000000000", "app", datetime.now(UTC))
            referrer = ManifestRecord(
                repository_id=repository.id,
                digest=Digest.of(payload),
                media_type="application/vnd.oci.image.manifest.v1+json",
                size=len(payload),
                payload=payload,
                pushed_at=datetime.now(UTC) - timedelta(days=2),
                subject=Digest.of(b"a deleted image"),
            )
            await tx.put_manifest(referrer, [])
        recorded: list[Mapping[str, object]] = []

        async def progress(report: Mapping[str, object]) -> None:
            recorded.append(report)

        await collect_garbage_job(registry)(None, progress)  # type: ignore[arg-type]
        assert recorded[-1]["referrers_deleted"] == 1
        async with metadata.read() as tx:
            assert await tx.get_manifest(repository.id, referrer.digest) is None
        async with metadata.transaction() as tx:
            await tx.delete_repository(repository.id)
    finally:
        await registry.close()


async def test_the_garbage_collection_job_shows_its_phase_as_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GC phase progress reaches the job's row while the job runs, not only at its end."""
    from moorage.app import wire
    from moorage.config import Settings
    from moorage.domain.jobs import JobState
    from moorage.ports.clock import system_clock
    from moorage.storage.blobs import build_blob_store
    from moorage.storage.metadata.sql.store import open_sql_metadata_store
    from moorage.workers import runner as runner_module
    from moorage.workers import wiring
    from moorage.workers.runner import Runner, RunnerSettings

    monkeypatch.setattr(runner_module, "PROGRESS_INTERVAL", 0.01)
    monkeypatch.setattr(wiring, "GC_PROGRESS_INTERVAL", 0.01)
    settings = Settings(data_dir=tmp_path, gc_interval=0.0, lifecycle_interval=0.0)
    metadata = await open_sql_metadata_store(settings.resolved_database_url)
    registry = wire(settings, metadata, build_blob_store("memory"))
    try:
        digests = [await seed_blob(registry, f"blob {n}".encode()) for n in range(3)]
        # Listing the blob files (the phase after "blobs", outside any transaction) waits,
        # so that the job stays at the end of its "blobs" phase for a while.
        gate = asyncio.Event()
        list_digests = registry.blob_store.list_digests

        async def gated_list_digests(
            modified_before: datetime | None = None,
        ) -> AsyncIterator[Digest]:
            await gate.wait()
            async for digest in list_digests(modified_before):
                yield digest

        monkeypatch.setattr(registry.blob_store, "list_digests", gated_list_digests)
        runner = Runner(metadata, system_clock, RunnerSettings(heartbeat=timedelta(hours=1)))
        runner.register(
            wiring.GC_JOB,
            wiring.collect_garbage_job(
                registry, grace_period=timedelta(0), upload_grace_period=timedelta(0)
            ),
        )
        async with metadata.transaction() as tx:
            job = await tx.enqueue_job(wiring.GC_JOB, {}, system_clock())
        assert job is not None
        await runner.tick()

        async def progress() -> object:
            async with metadata.read() as tx:
                row = await tx.get_job(job.id)
            assert row is not None
            return row.progress

        async with asyncio.timeout(5):
            while await progress() != {"phase": "blobs", "done": 3, "total": 3}:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        gate.set()
        await runner.stop()
        async with metadata.read() as tx:
            done = await tx.get_job(job.id)
        assert done is not None
        assert done.state is JobState.SUCCEEDED
        assert done.progress is not None
        assert done.progress["blobs_deleted"] == 3
        for digest in digests:
            assert await registry.blob_store.stat(digest) is None
    finally:
        await registry.close()


async def seed_blob(registry: Registry, data: bytes) -> Digest:
    """A blob nothing references: its bytes in the blob store and its row, used just now."""
    digest = Digest.of(data)
    upload_id = str(uuid.uuid4())
    await registry.blob_store.start_upload(upload_id)
    await registry.blob_store.write_upload(upload_id, 0, _chunks(data))
    await registry.blob_store.commit_upload(upload_id, digest, len(data))
    async with registry.metadata.transaction() as tx:
        await tx.put_blob(digest, len(data), datetime.now(UTC))
    return digest


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_gc_phase_progress_is_passed_on_at_most_once_an_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moorage.services.gc import GcProgress
    from moorage.workers import wiring

    monkeypatch.setattr(wiring, "GC_PROGRESS_INTERVAL", 0.05)
    sent: list[dict[str, object]] = []

    async def progress(report: Mapping[str, object]) -> None:
        sent.append(dict(report))

    async with wiring._forward_phases(progress) as notify:
        for done in range(1, 41):
            notify(GcProgress("blobs", done, 40))
            await asyncio.sleep(0.005)  # 40 reports in about 0.2 s
        await asyncio.sleep(0.1)
    assert sent[0] == {"phase": "blobs", "done": 1, "total": 40}  # the first at once
    assert sent[-1] == {"phase": "blobs", "done": 40, "total": 40}
    assert 2 <= len(sent) <= 8
    assert [report["done"] for report in sent] == sorted(report["done"] for report in sent)
