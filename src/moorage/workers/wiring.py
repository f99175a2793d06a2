"""How the application runs its workers: the job kinds it handles, its schedules, and who may
run them.

``moorage serve`` starts the workers by default (setting ``workers``; ``--no-workers``), and
``moorage worker`` runs them alone. Both call :func:`start_workers`.

One process per SQLite database: a runner takes an exclusive lock on the file
``<database>.workers.lock`` beside the database while it runs. Claims would stay exclusive
without it (SQLite has one writer), but two processes would only take turns at that writer.
``moorage worker`` refuses to start while another process holds the lock; ``moorage serve``
logs a warning and serves without workers. The kernel drops the lock of a process that dies,
so a crashed worker never blocks the next. On PostgreSQL there is no lock: any number of
processes share the queue.

Job kinds and schedules: features register their handlers in :func:`build_runner` and
declare their schedules in :func:`declare_schedules`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING

from sqlalchemy.engine import make_url

from moorage.domain.jobs import Job
from moorage.ports.clock import system_clock
from moorage.services import backfill, lifecycle, pull_through_cache, replication, scanning
from moorage.services.gc import (
    DEFAULT_GRACE_PERIOD,
    DEFAULT_UPLOAD_GRACE_PERIOD,
    GarbageCollector,
    GcProgress,
)
from moorage.workers.runner import Handler, JobProgress, Runner, RunnerSettings

if TYPE_CHECKING:
    from moorage.app import Registry

log = logging.getLogger("moorage.jobs")

GC_JOB = "gc"
GC_SCHEDULE = "gc"
# The GC job passes its phase progress on to the job's progress at most this often (seconds).
GC_PROGRESS_INTERVAL = 1.0

# For tests only, not a supported extension point: "module:function", called with the runner
# to register extra handlers (the end-to-end tests' blocking job kind).
TEST_HANDLERS_ENV = "MOORAGE_TEST_JOB_HANDLERS"


class WorkersBusy(Exception):
    """Another process runs the workers of this SQLite database; the message is one line."""


def build_runner(registry: Registry) -> Runner:
    """A runner on the registry's metadata store with every job kind registered."""
    settings = registry.settings
    runner = Runner(
        registry.metadata,
        system_clock,
        RunnerSettings(lease=timedelta(seconds=settings.job_lease_seconds)),
    )
    # Job kinds: runner.register(kind, handler) for each background feature.
    runner.register(
        lifecycle.PREVIEW_JOB, in_job_region(registry, lambda r: r.lifecycle.handle_preview_job)
    )
    runner.register(lifecycle.RUN_JOB, lifecycle_run_job(registry))
    runner.register(GC_JOB, collect_garbage_job(registry))
    runner.register(
        scanning.SCAN_JOB, in_job_region(registry, lambda r: r.scanning.handle_scan_job)
    )
    runner.register(
        replication.REPLICATE_JOB, in_job_region(registry, lambda r: r.replication.handle_job)
    )
    runner.register(
        pull_through_cache.FILL_JOB, in_job_region(registry, lambda r: r.cache.handle_fill_job)
    )
    runner.register(
        backfill.BACKFILL_JOB, in_job_region(registry, lambda r: r.backfills.handle_job)
    )
    runner.register(
        replication.REPLICATE_DELETE_JOB,
        in_job_region(registry, lambda r: r.replication.handle_delete_job),
    )
    # Rescans look at every region's images, each in its own region (services/scanning.py).
    runner.register(scanning.RESCAN_JOB, registry.scanning.handle_rescan_job)
    _register_test_handlers(runner)
    return runner


def in_job_region(registry: Registry, handler_of: Callable[[Registry], Handler]) -> Handler:
    """A handler that runs the job with the services of the region it names (its payload's
    ``region``: the region of the repository it concerns; jobs enqueued before regions name
    none and are the deployment's region's)."""

    async def handle(job: Job, progress: JobProgress) -> None:
        region = job.payload.get("region")
        regional = registry if region is None else registry.in_region(str(region))
        await handler_of(regional)(job, progress)

    return handle


def lifecycle_run_job(registry: Registry) -> Handler:
    """The scheduled lifecycle run: every region that has repositories, one after another."""

    async def handle(job: Job, progress: JobProgress) -> None:
        for region in await registry.regions_in_use():
            regional = registry.serving(region)
            if regional is None:
                # Data of a region this deployment no longer serves: `moorage lifecycle run`
                # still reaches it; the schedule must not fail every run over it.
                log.warning("lifecycle: skipping region %s, which is not served", region)
                continue
            await regional.lifecycle.handle_run_job(job, progress)

    return handle


async def declare_schedules(runner: Runner, registry: Registry) -> None:
    """Ensure the periodic jobs exist: ``await runner.scheduler.ensure(name, kind, payload,
    every)`` for each background feature that runs on a schedule."""
    interval = registry.settings.lifecycle_interval
    if interval > 0:
        await runner.scheduler.ensure(
            lifecycle.RUN_SCHEDULE, lifecycle.RUN_JOB, {}, timedelta(seconds=interval)
        )
    else:  # turned off: a schedule an earlier configuration made must stop too
        async with registry.metadata.transaction() as tx:
            await tx.delete_schedule(lifecycle.RUN_SCHEDULE)
    gc_interval = registry.settings.gc_interval
    if gc_interval > 0:
        await runner.scheduler.ensure(GC_SCHEDULE, GC_JOB, {}, timedelta(seconds=gc_interval))
    else:
        async with registry.metadata.transaction() as tx:
            await tx.delete_schedule(GC_SCHEDULE)


def collect_garbage_job(
    registry: Registry,
    *,
    grace_period: timedelta = DEFAULT_GRACE_PERIOD,
    upload_grace_period: timedelta = DEFAULT_UPLOAD_GRACE_PERIOD,
) -> Handler:
    """The periodic garbage collection (services/gc.py) as a job. While it runs, the job's
    progress is the phase and how far it got (``{"phase", "done", "total"}``); once it ends,
    what it freed. Both are shown by ``moorage jobs list``."""

    async def handle(job: Job, progress: JobProgress) -> None:
        collector = GarbageCollector(
            registry.metadata,
            registry.blob_store,
            system_clock,
            grace_period=grace_period,
            upload_grace_period=upload_grace_period,
        )
        async with _forward_phases(progress) as forward:
            result = await collector.run(dry_run=False, progress=forward)
        await progress(dict(result.as_dict()))
        log.info("garbage collection: %s", result.summary())

    return handle


@contextlib.asynccontextmanager
async def _forward_phases(progress: JobProgress) -> AsyncIterator[Callable[[GcProgress], None]]:
    """A GC phase callback that passes the latest phase progress on to the job's progress,
    in order, from a task of its own (the GC callback is synchronous): at most once per
    ``GC_PROGRESS_INTERVAL`` seconds, as each report may be a database write. A report not
    yet passed on when the block ends is dropped: the caller reports the result instead."""
    latest: list[GcProgress] = []
    changed = asyncio.Event()

    def notify(update: GcProgress) -> None:
        latest[:] = [update]
        changed.set()

    async def forward() -> None:
        while True:
            await changed.wait()
            changed.clear()
            update = latest.pop()
            await progress({"phase": update.phase, "done": update.done, "total": update.total})
            await asyncio.sleep(GC_PROGRESS_INTERVAL)

    forwarder = asyncio.create_task(forward(), name="gc-progress")
    try:
        yield notify
    finally:
        forwarder.cancel()
        # Not `await forwarder`: its CancelledError would hide a cancellation of this task.
        await asyncio.wait({forwarder})


@dataclass
class Workers:
    """A started runner and the lock it holds; :meth:`stop` ends both."""

    runner: Runner
    lock: WorkerLock

    async def stop(self, grace: float) -> None:
        try:
            await self.runner.stop(grace)
        finally:
            self.lock.release()


async def start_workers(registry: Registry, *, required: bool) -> Workers | None:
    """Start a runner for the registry. When another process runs this SQLite database's
    workers: raise WorkersBusy if ``required``, else log a warning and return None."""
    lock = WorkerLock.acquire(registry.settings.resolved_database_url)
    if lock is None:
        message = (
            "another process runs the background jobs of this SQLite database (see "
            f"{_lock_path(registry.settings.resolved_database_url)}); on SQLite one process "
            "runs them: stop it, or use PostgreSQL for several"
        )
        if required:
            raise WorkersBusy(message)
        log.warning("not running background jobs here: %s", message)
        return None
    try:
        runner = build_runner(registry)
        await declare_schedules(runner, registry)
        # Jobs enqueued in this process (a push's replication and scan) start at once.
        registry.metadata.on_job_enqueued(runner.wake)
        runner.start()
    except BaseException:
        lock.release()
        raise
    return Workers(runner, lock)


class WorkerLock:
    """The one-process-per-SQLite-database lock (module docstring); a no-op elsewhere."""

    def __init__(self, handle: IO[str] | None) -> None:
        self._handle = handle

    @classmethod
    def acquire(cls, database_url: str) -> WorkerLock | None:
        """The lock, or None when another process holds it."""
        path = _lock_path(database_url)
        if path is None:
            return cls(None)
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return cls(handle)

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing drops the flock
            self._handle = None


def _lock_path(database_url: str) -> Path | None:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    return Path(url.database).with_name(Path(url.database).name + ".workers.lock")


def _register_test_handlers(runner: Runner) -> None:
    spec = os.environ.get(TEST_HANDLERS_ENV)
    if not spec:
        return
    module_name, _, function_name = spec.partition(":")
    register = getattr(importlib.import_module(module_name), function_name)
    register(runner)
    log.warning("%s: registered test job handlers from %s", TEST_HANDLERS_ENV, spec)
