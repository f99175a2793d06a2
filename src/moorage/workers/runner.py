"""The job runner: claims due jobs from the metadata store and runs their handlers.

One round (:meth:`Runner.tick`)::

    enqueue the runs of due schedules (Scheduler.fire_due; dedupe: one pending run each)
    -> is a job of a registered kind due? (a read)
    -> claim up to the free slots, each with a lease of ``lease`` (a write)
    -> run each claimed job's handler in a task of its own, renewing the lease every
       ``heartbeat`` seconds, then record the outcome:
         returned -> succeeded;  raised -> failed, retried after exponential backoff,
         or dead after max_attempts;  lease lost -> the handler is cancelled (another
         worker has the job now, or the job was deleted, as the emulator's reset does)
       A worker that cannot renew (the database is unreachable) keeps running the job only
       while the lease it last renewed surely holds: at ``LEASE_MARGIN`` of the lease after
       the last renewal that succeeded, it cancels the handler and records nothing. The
       lease then expires and the job is claimed again, by a worker that can reach the
       database, never while this one still runs it.

:meth:`Runner.start` runs rounds until :meth:`Runner.stop`, which lets running handlers
finish for a grace period, then cancels them and gives their leases back (the attempt is not
counted). A worker that dies without stopping leaves its leases to expire: the jobs become
due again and another worker (or this one, restarted) runs them. Handlers must therefore be
idempotent: a job may run more than once, never by two workers whose leases overlap.

Handlers are registered by kind (:meth:`Runner.register`); a runner claims only kinds it has
a handler for. Time comes from the injected clock (leases, backoff, schedules); the waits
between rounds and between heartbeats are real ``asyncio`` sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from moorage.domain.jobs import (
    Job,
    JobSchedule,
    JobState,
    JsonObject,
    error_text,
    next_run,
    retry_delay,
    schedule_dedupe_key,
)
from moorage.ports.clock import Clock, system_clock
from moorage.ports.metadata import MetadataStore

log = logging.getLogger("moorage.jobs")

JobProgress = Callable[[JsonObject], Awaitable[None]]
"""Given to a handler: record how far the job got (a JSON object, shown by ``moorage jobs
list``). Cheap to call often: it is written with the lease's heartbeat, at most once a
second."""

Handler = Callable[[Job, JobProgress], Coroutine[Any, Any, None]]
"""``async def handle(job, progress) -> None``: do the job; raise to fail the attempt. Must be
idempotent (see the module docstring). Cancellation means the worker is stopping or lost the
lease: stop promptly."""

# Progress reaches the store at most this often (seconds), besides each heartbeat.
PROGRESS_INTERVAL = 1.0

# A worker that has not renewed its lease for this fraction of the lease stops the job. Below
# 1, so that the handler is cancelled before another worker may claim the job (the rest covers
# the cancellation itself and clocks that drift apart).
LEASE_MARGIN = 0.9


def worker_id() -> str:
    """A lease owner name that says where the worker runs: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class RunnerSettings:
    """How a runner works. ``heartbeat`` defaults to a third of the lease; one longer than
    ``LEASE_MARGIN`` of the lease stops every job that runs that long (it cannot be kept)."""

    lease: timedelta = timedelta(seconds=60)
    heartbeat: timedelta | None = None
    poll_interval: float = 1.0  # seconds between rounds when nothing wakes the runner
    concurrency: int = 2  # jobs run at once
    retry_base: timedelta = timedelta(seconds=30)
    retry_cap: timedelta = timedelta(hours=1)
    # Finished jobs are kept this long for `moorage jobs list`, then deleted.
    retention: timedelta = timedelta(days=7)
    housekeeping_interval: float = 600.0  # seconds between deletions of old jobs

    @property
    def heartbeat_seconds(self) -> float:
        return (self.heartbeat or self.lease / 3).total_seconds()


class Scheduler:
    """Periodic jobs: :meth:`ensure` declares one; :meth:`fire_due` (each round of the
    runner) enqueues the runs that are due.

    Two processes firing one schedule at once enqueue one run: moving the schedule on is a
    compare-and-set on its due time, in the same transaction as the enqueue, and the run's
    dedupe key (``schedule:<name>``) admits one pending run per schedule (a run still pending
    when the next is due absorbs it).
    """

    def __init__(self, store: MetadataStore, clock: Clock = system_clock) -> None:
        self._store = store
        self._clock = clock
        self._declared: dict[str, tuple[str, JsonObject, timedelta]] = {}

    async def ensure(
        self, name: str, kind: str, payload: JsonObject, every: timedelta
    ) -> JobSchedule:
        """Create or update the schedule ``name`` (see ``JobRecords.ensure_schedule``): a new
        one is first due now. Remembered, so that :meth:`restore` can put it back."""
        self._declared[name] = (kind, dict(payload), every)
        async with self._store.transaction() as tx:
            return await tx.ensure_schedule(name, kind, payload, every, self._clock())

    async def restore(self) -> None:
        """Ensure every schedule declared here exists (after someone deleted it)."""
        missing = []
        async with self._store.read() as tx:
            for name in self._declared:
                if await tx.get_schedule(name) is None:
                    missing.append(name)
        for name in missing:
            await self.ensure(name, *self._declared[name])

    async def fire_due(self) -> list[Job]:
        """Enqueue one run of each due schedule; return the jobs enqueued."""
        now = self._clock()
        async with self._store.read() as tx:
            due = await tx.due_schedules(now)
        enqueued = []
        for schedule in due:
            async with self._store.transaction() as tx:
                following = next_run(schedule.next_run_at, schedule.interval, now)
                if not await tx.advance_schedule(schedule.name, schedule.next_run_at, following):
                    continue  # another process fired it
                job = await tx.enqueue_job(
                    schedule.kind,
                    schedule.payload,
                    now,
                    dedupe_key=schedule_dedupe_key(schedule.name),
                )
            if job is None:
                log.info("schedule %s: the previous run is still pending", schedule.name)
            else:
                log.info("schedule %s: enqueued job %d (%s)", schedule.name, job.id, job.kind)
                enqueued.append(job)
        return enqueued


class Runner:
    """Runs jobs of the registered kinds from ``store``; see the module docstring."""

    def __init__(
        self,
        store: MetadataStore,
        clock: Clock = system_clock,
        settings: RunnerSettings | None = None,
        *,
        owner: str | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self.settings = settings or RunnerSettings()
        if self.settings.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.owner = owner or worker_id()
        self.scheduler = Scheduler(store, clock)
        self._handlers: dict[str, Handler] = {}
        self._running: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._last_housekeeping: float | None = None

    # -- configuration ------------------------------------------------------------------

    def register(self, kind: str, handler: Handler) -> None:
        """Run jobs of ``kind`` with ``handler``. Raises ValueError for a kind registered
        already."""
        if kind in self._handlers:
            raise ValueError(f"a handler for job kind {kind!r} is registered already")
        self._handlers[kind] = handler

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self._handlers)

    @property
    def running_jobs(self) -> frozenset[int]:
        return frozenset(self._running)

    # -- running ------------------------------------------------------------------------

    async def tick(self) -> list[Job]:
        """One round: fire due schedules, then claim due jobs up to the free slots and start
        them (without waiting for them). Returns the jobs started."""
        await self.scheduler.fire_due()
        await self._housekeeping()
        free = self.settings.concurrency - len(self._running)
        if free <= 0 or not self._handlers or self._stopping:
            return []
        now = self._clock()
        async with self._store.read() as tx:
            due_at = await tx.next_job_due(self._handlers)
        if due_at is None or due_at > now:
            return []
        claimed_at = time.monotonic()
        async with self._store.transaction() as tx:
            claimed = await tx.claim_jobs(
                self.owner, now, now + self.settings.lease, self._handlers, limit=free
            )
        for job in claimed:
            log.info("job %d (%s): attempt %d started", job.id, job.kind, job.attempts)
            lease = _Lease(now, claimed_at, self.settings.lease)
            task = asyncio.create_task(self._execute(job, lease), name=f"job-{job.id}")
            self._running[job.id] = task
            task.add_done_callback(functools.partial(self._finished, job.id))
        return claimed

    async def run_due(self) -> list[Job]:
        """Rounds until nothing more is due, waiting for every job started (tests, and
        ``moorage`` commands that run the queue once). Returns the jobs run."""
        ran: list[Job] = []
        while True:
            started = await self.tick()
            if not started and not self._running:
                return ran
            ran += started
            if self._running:
                await asyncio.wait(list(self._running.values()))

    def wake(self) -> None:
        """Start the next round now (a job was just enqueued in this process)."""
        self._wake.set()

    def start(self) -> None:
        """Run rounds in the background until :meth:`stop`."""
        if self._loop_task is not None:
            raise RuntimeError("the runner is started already")
        self._stopping = False
        self._loop_task = asyncio.create_task(self._loop(), name="job-runner")
        log.info(
            "job runner %s started: kinds %s", self.owner, ", ".join(sorted(self.kinds)) or "none"
        )

    async def stop(self, grace: float = 30.0) -> None:
        """Stop claiming; let running jobs finish for ``grace`` seconds, then cancel them and
        give their leases back."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
            self._loop_task = None
        if self._running:
            log.info("job runner: waiting up to %ss for %d jobs", grace, len(self._running))
            _, pending = await asyncio.wait(list(self._running.values()), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        log.info("job runner %s stopped", self.owner)

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.tick()
            except Exception:
                log.exception("job runner: a round failed; retrying")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_interval):
                    await self._wake.wait()

    def _finished(self, job_id: int, _task: asyncio.Task[None]) -> None:
        self._running.pop(job_id, None)
        self._wake.set()  # a slot is free

    async def _housekeeping(self) -> None:
        now_monotonic = time.monotonic()
        last = self._last_housekeeping
        if last is not None and now_monotonic - last < self.settings.housekeeping_interval:
            return
        self._last_housekeeping = now_monotonic
        await self.scheduler.restore()
        async with self._store.transaction() as tx:
            deleted = await tx.delete_finished_jobs(self._clock() - self.settings.retention)
        if deleted:
            log.info("deleted %d jobs finished more than %s ago", deleted, self.settings.retention)

    # -- one job ------------------------------------------------------------------------

    async def _execute(self, job: Job, lease: _Lease) -> None:
        reporter = _ProgressReporter()
        handler = self._handlers[job.kind]
        work = asyncio.create_task(handler(job, reporter.report), name=f"job-{job.id}-handler")
        lost = False
        renewed_at = time.monotonic()
        try:
            while not work.done():
                await self._wait(work, reporter, renewed_at, lease)
                if work.done():
                    break
                now = time.monotonic()
                heartbeat_due = now - renewed_at >= self.settings.heartbeat_seconds
                progress_due = reporter.unsaved and now - reporter.saved_at >= PROGRESS_INTERVAL
                if not (heartbeat_due or progress_due or lease.expiring(now)):
                    continue
                renewed_at = now
                if not await self._renew(job, reporter, lease):
                    lost = True
                    work.cancel()
                    await asyncio.wait({work})
        except asyncio.CancelledError:
            # The runner is stopping: abandon the job, give the lease back.
            work.cancel()
            await asyncio.wait({work})
            await asyncio.shield(self._release(job))
            raise
        if lost:
            log.warning(
                "job %d (%s): lease lost (this worker stalled past %s or could not renew "
                "it, or the job was deleted); stopped it, recording nothing",
                job.id,
                job.kind,
                self.settings.lease,
            )
            return
        error: BaseException | None
        if work.cancelled():
            error = asyncio.CancelledError("the handler was cancelled")
        else:
            error = work.exception()
        if error is None:
            await self._complete(job, reporter)
        else:
            await self._fail(job, error)

    async def _wait(
        self,
        work: asyncio.Task[None],
        reporter: _ProgressReporter,
        renewed_at: float,
        lease: _Lease,
    ) -> None:
        """Until the handler ends, the next heartbeat is due, new progress may be written, or
        the lease can no longer be assumed held."""
        now = time.monotonic()
        timeout = min(self.settings.heartbeat_seconds - (now - renewed_at), lease.safe_until - now)
        waiting: set[asyncio.Future[Any]] = {work}
        if reporter.unsaved:
            timeout = min(timeout, PROGRESS_INTERVAL - (now - reporter.saved_at))
        else:
            reporter.changed.clear()
            waiting.add(asyncio.ensure_future(reporter.changed.wait()))
        try:
            await asyncio.wait(waiting, timeout=max(0.0, timeout), return_when="FIRST_COMPLETED")
        finally:
            for future in waiting - {work}:
                future.cancel()

    async def _renew(self, job: Job, reporter: _ProgressReporter, lease: _Lease) -> bool:
        """Extend the lease (with any new progress); False when it is lost, or may be.

        A store error (or a renewal still unanswered when the lease may expire) is logged;
        the lease is assumed held, and the next heartbeat tries again, only while less than
        ``LEASE_MARGIN`` of it has passed since the last renewal that succeeded, by the
        injected clock (the one the other workers compare the lease with) and by this
        process's monotonic clock (which no clock change moves)."""
        started = time.monotonic()
        remaining = lease.safe_until - started
        if remaining <= 0:
            log.error("job %d: the lease was not renewed in time; stopping it", job.id)
            return False
        progress = reporter.take()
        now = self._clock()
        try:
            async with asyncio.timeout(remaining), self._store.transaction() as tx:
                held = await tx.renew_lease(
                    job.id, self.owner, now + self.settings.lease, now, progress=progress
                )
        except Exception:
            reporter.put_back(progress)
            if lease.expiring(time.monotonic(), self._clock()):
                log.exception(
                    "job %d: renewing the lease failed, and it may expire before the next "
                    "try; stopping the job (it runs again once the lease has expired)",
                    job.id,
                )
                return False
            log.exception("job %d: renewing the lease failed; trying again", job.id)
            return True
        if held:
            lease.renewed(now, started)
        return held

    async def _complete(self, job: Job, reporter: _ProgressReporter) -> None:
        progress = reporter.take()
        now = self._clock()
        try:
            async with self._store.transaction() as tx:
                if progress is not None:
                    await tx.renew_lease(job.id, self.owner, now, now, progress=progress)
                done = await tx.complete_job(job.id, self.owner, now)
        except Exception:
            log.exception("job %d: recording its success failed; it will run again", job.id)
            return
        if done:
            log.info("job %d (%s): succeeded", job.id, job.kind)
        else:
            log.warning("job %d (%s): finished after its lease was lost", job.id, job.kind)

    async def _fail(self, job: Job, error: BaseException) -> None:
        log.warning(
            "job %d (%s): attempt %d of %d failed",
            job.id,
            job.kind,
            job.attempts,
            job.max_attempts,
            exc_info=error,
        )
        now = self._clock()
        retry_at = now + retry_delay(
            job.attempts, self.settings.retry_base, self.settings.retry_cap
        )
        try:
            async with self._store.transaction() as tx:
                state = await tx.fail_job(job.id, self.owner, now, error_text(error), retry_at)
        except Exception:
            log.exception("job %d: recording its failure failed", job.id)
            return
        if state is JobState.DEAD:
            log.error("job %d (%s): dead after %d attempts", job.id, job.kind, job.attempts)
        elif state is JobState.FAILED:
            log.info("job %d (%s): retry at %s", job.id, job.kind, retry_at.isoformat())

    async def _release(self, job: Job) -> None:
        try:
            async with self._store.transaction() as tx:
                released = await tx.release_job(job.id, self.owner, self._clock())
        except Exception:
            log.exception("job %d: giving its lease back failed; it expires instead", job.id)
            return
        if released:
            log.info("job %d (%s): stopped unfinished; queued again", job.id, job.kind)


class _Lease:
    """When this worker last knew it held a job's lease: the start of the claim or of the
    last renewal that succeeded, by the injected clock and by the monotonic clock."""

    def __init__(self, at: datetime, at_monotonic: float, length: timedelta) -> None:
        self._margin = length * LEASE_MARGIN
        self.renewed(at, at_monotonic)

    def renewed(self, at: datetime, at_monotonic: float) -> None:
        self._safe_until_clock = at + self._margin
        self.safe_until = at_monotonic + self._margin.total_seconds()

    def expiring(self, now_monotonic: float, now: datetime | None = None) -> bool:
        """True once the lease can no longer be assumed held (by either clock)."""
        if now is not None and now >= self._safe_until_clock:
            return True
        return now_monotonic >= self.safe_until


class _ProgressReporter:
    """The latest progress a handler reported, until a heartbeat writes it."""

    def __init__(self) -> None:
        self._latest: dict[str, Any] | None = None
        self.saved_at = time.monotonic()
        self.changed = asyncio.Event()

    @property
    def unsaved(self) -> bool:
        return self._latest is not None

    async def report(self, progress: Mapping[str, Any]) -> None:
        self._latest = dict(progress)
        self.changed.set()

    def take(self) -> dict[str, Any] | None:
        latest, self._latest = self._latest, None
        if latest is not None:
            self.saved_at = time.monotonic()
        return latest

    def put_back(self, progress: dict[str, Any] | None) -> None:
        if progress is not None and self._latest is None:
            self._latest = progress
