"""The job records port: the durable queue of background jobs, and periodic schedules.

Part of every metadata transaction (``MetadataTransaction`` includes :class:`JobRecords`),
so that a change and the job that follows it up commit together. The states and their
transitions are in ``moorage.domain.jobs``; the SQL schema in ``storage/metadata/sql/tables.py``.

Leases: :meth:`JobRecords.claim_jobs` gives each job it returns to one ``owner`` until
``lease_expires_at``. The owner renews the lease while it works and ends it with
:meth:`~JobRecords.complete_job`, :meth:`~JobRecords.fail_job` or
:meth:`~JobRecords.release_job`; each of these acts only while the caller still holds the
lease (state ``running``, same owner) and returns False otherwise. A lease that expires makes
the job claimable again, by anyone: a crashed worker's job is picked up, and handlers must be
idempotent.

Claims are exclusive: two transactions that claim at once never get the same job (PostgreSQL:
``FOR UPDATE SKIP LOCKED``, so concurrent claimers skip each other's rows instead of waiting;
SQLite: one writer at a time).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Protocol

from moorage.domain.jobs import Job, JobSchedule, JobState, JsonObject

DEFAULT_MAX_ATTEMPTS = 5


class JobRecords(Protocol):
    # -- the queue ----------------------------------------------------------------------
    async def enqueue_job(
        self,
        kind: str,
        payload: JsonObject,
        now: datetime,
        *,
        dedupe_key: str | None = None,
        run_after: datetime | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> Job | None:
        """Add a ``queued`` job, due at ``run_after`` (default ``now``); return it.

        With a ``dedupe_key`` that a pending job (queued, running, failed) holds, add nothing
        and return None, also when that job was enqueued by a concurrent transaction.
        """
        ...

    async def claim_jobs(
        self,
        owner: str,
        now: datetime,
        lease_expires_at: datetime,
        kinds: Collection[str],
        *,
        limit: int = 1,
    ) -> list[Job]:
        """Claim up to ``limit`` due jobs of ``kinds`` for ``owner``, oldest ``run_after``
        first (then by id), and return them as claimed: ``running``, ``attempts`` one more.

        Due: ``queued`` or ``failed`` with ``run_after <= now``, or ``running`` with a lease
        that expired at or before ``now``. A job whose expired lease was its last allowed
        attempt is not claimed but goes ``dead``, with ``LEASE_EXPIRED_ERROR`` as its
        ``last_error`` (what became of that attempt is not known).
        """
        ...

    async def next_job_due(self, kinds: Collection[str]) -> datetime | None:
        """When the first pending job of ``kinds`` becomes claimable (it may be past); None
        when there is none. A read: cheaper than a claim that finds nothing."""
        ...

    async def renew_lease(
        self,
        job_id: int,
        owner: str,
        lease_expires_at: datetime,
        now: datetime,
        *,
        progress: JsonObject | None = None,
    ) -> bool:
        """Extend the owner's lease (and record ``progress`` when given); False when the lease
        is lost."""
        ...

    async def complete_job(self, job_id: int, owner: str, now: datetime) -> bool:
        """``succeeded``, finished at ``now``; False when the lease is lost (nothing changes)."""
        ...

    async def fail_job(
        self, job_id: int, owner: str, now: datetime, error: str, retry_at: datetime
    ) -> JobState | None:
        """Record a failed attempt with ``error`` (already free of secrets): ``failed``, due
        again at ``retry_at``, or ``dead`` (finished at ``now``) when it was the last allowed
        attempt. Returns the new state, None when the lease is lost."""
        ...

    async def release_job(self, job_id: int, owner: str, now: datetime) -> bool:
        """Give the lease back unfinished (a worker stopping): ``queued``, due at ``now``, and
        the attempt not counted. False when the lease is lost."""
        ...

    async def get_job(self, job_id: int) -> Job | None: ...

    async def list_jobs(
        self,
        *,
        state: JobState | None = None,
        kind: str | None = None,
        before_id: int | None = None,
        limit: int | None = None,
    ) -> list[Job]:
        """Jobs, newest (highest id) first, optionally of one state and kind; ``before_id``
        pages on from the last id seen."""
        ...

    async def delete_finished_jobs(self, finished_before: datetime) -> int:
        """Forget ``succeeded`` and ``dead`` jobs finished before the cutoff; how many."""
        ...

    # -- schedules ----------------------------------------------------------------------
    async def ensure_schedule(
        self,
        name: str,
        kind: str,
        payload: JsonObject,
        interval: timedelta,
        now: datetime,
        *,
        first_run_at: datetime | None = None,
    ) -> JobSchedule:
        """Create the schedule, first due at ``first_run_at`` (default ``now``); or set an
        existing one's kind, payload and interval, keeping its ``next_run_at`` unless that is
        later than ``now + interval`` (a shortened interval takes effect). Returns the schedule
        as stored. Intervals are whole seconds (fractions are dropped), at least one."""
        ...

    async def get_schedule(self, name: str) -> JobSchedule | None: ...

    async def list_schedules(self) -> list[JobSchedule]:
        """Every schedule, by name."""
        ...

    async def due_schedules(self, now: datetime) -> list[JobSchedule]:
        """Schedules with ``next_run_at <= now``, by ``next_run_at``."""
        ...

    async def advance_schedule(self, name: str, due_at: datetime, next_run_at: datetime) -> bool:
        """Move a schedule that is still due at ``due_at`` to ``next_run_at``; False when
        another transaction moved it first (or it is gone): that one enqueues the run."""
        ...

    async def delete_schedule(self, name: str) -> bool: ...
