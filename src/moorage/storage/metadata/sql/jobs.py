"""The JobRecords port on SQL: a mixin of the store's transaction (``store.py``).

``SqlJobRecords`` runs its statements on ``self._c``, the transaction's connection, like
``identities.py``. How it keeps the port's promises:

- **claims** are ``SELECT id ... ORDER BY run_after, id LIMIT n FOR UPDATE SKIP LOCKED``
  then ``UPDATE jobs ... WHERE id IN (those) RETURNING *``. On PostgreSQL the SELECT locks
  the rows it picks and skips rows another claimer has locked, so concurrent claimers share
  the queue without waiting for each other; the UPDATE repeats the due condition. (As one
  statement, ``WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)``, the planner may
  evaluate the subquery more than once and update more than ``n`` rows.) SQLite ignores
  ``FOR UPDATE``: its write transaction (``BEGIN IMMEDIATE``) already excludes every other
  claimer, in this process and in others.
- **dedupe**: ``INSERT ... ON CONFLICT DO NOTHING`` against the partial unique index on
  ``dedupe_key`` (pending jobs only): the loser of a race inserts nothing, without an
  integrity error that would abort a PostgreSQL transaction.
- every lease-holder's write (renew, complete, fail, release) matches on ``id``, ``state =
  'running'`` and ``lease_owner``, and reports from the row count whether it still held the
  lease.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Row,
    and_,
    case,
    delete,
    func,
    literal,
    null,
    or_,
    select,
    type_coerce,
    update,
)

from moorage.domain.jobs import LEASE_EXPIRED_ERROR, Job, JobSchedule, JobState, JsonObject
from moorage.ports.jobs import DEFAULT_MAX_ATTEMPTS
from moorage.storage.metadata.sql.tables import UtcDateTime, job_schedules, jobs

if TYPE_CHECKING:
    from moorage.storage.metadata.sql.store import _InsertFactory, _Statements

_RETRYABLE = (JobState.QUEUED.value, JobState.FAILED.value)
_RUNNING = JobState.RUNNING.value
_FINAL = (JobState.SUCCEEDED.value, JobState.DEAD.value)


def _due(now: datetime) -> Any:
    return or_(
        and_(jobs.c.state.in_(_RETRYABLE), jobs.c.run_after <= now),
        and_(jobs.c.state == _RUNNING, jobs.c.lease_expires_at <= now),
    )


def _held(job_id: int, owner: str) -> Any:
    return and_(jobs.c.id == job_id, jobs.c.state == _RUNNING, jobs.c.lease_owner == owner)


class SqlJobRecords:
    """Job records on the transaction's connection ``_c``; ``_insert`` is the dialect's
    INSERT (with ``on_conflict_*``). Both are set by ``_SqlTransaction.__init__``."""

    _c: _Statements
    _insert: _InsertFactory
    enqueued: bool

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
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        statement = (
            self._insert(jobs)
            .values(
                kind=kind,
                payload=dict(payload),
                dedupe_key=dedupe_key,
                state=JobState.QUEUED.value,
                attempts=0,
                max_attempts=max_attempts,
                run_after=run_after or now,
                created_at=now,
                updated_at=now,
            )
            # Only the partial unique index on dedupe_key can conflict (ids are generated).
            .on_conflict_do_nothing()
            .returning(*jobs.c)
        )
        row = (await self._c.execute(statement)).first()
        if row is None:
            return None
        self.enqueued = True  # the store wakes its runners once this commits
        return _job(row)

    async def claim_jobs(
        self,
        owner: str,
        now: datetime,
        lease_expires_at: datetime,
        kinds: Collection[str],
        *,
        limit: int = 1,
    ) -> list[Job]:
        kinds = list(kinds)
        if not kinds or limit < 1:
            return []
        # A job whose lease expired on its last allowed attempt is dead, not run again. Why
        # the lease expired is not known here: the worker may have crashed, stalled, or lost
        # the database (perhaps after the handler returned, while recording the success).
        await self._c.execute(
            update(jobs)
            .where(
                jobs.c.state == _RUNNING,
                jobs.c.lease_expires_at <= now,
                jobs.c.attempts >= jobs.c.max_attempts,
                jobs.c.kind.in_(kinds),
            )
            .values(
                state=JobState.DEAD.value,
                last_error=LEASE_EXPIRED_ERROR,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
                finished_at=now,
            )
        )
        # Two statements: the rows are locked (PostgreSQL) by the first; as a subquery of
        # the UPDATE, the planner may run the SELECT again and exceed its LIMIT.
        chosen = list(
            await self._c.scalars(
                select(jobs.c.id)
                .where(_due(now), jobs.c.kind.in_(kinds))
                .order_by(jobs.c.run_after, jobs.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not chosen:
            return []
        statement = (
            update(jobs)
            .where(jobs.c.id.in_(chosen), _due(now))
            .values(
                state=_RUNNING,
                attempts=jobs.c.attempts + 1,
                lease_owner=owner,
                lease_expires_at=lease_expires_at,
                updated_at=now,
            )
            .returning(*jobs.c)
        )
        claimed = [_job(row) for row in await self._c.execute(statement)]
        # RETURNING follows no ORDER BY.
        claimed.sort(key=lambda job: (job.run_after, job.id))
        return claimed

    async def next_job_due(self, kinds: Collection[str]) -> datetime | None:
        kinds = list(kinds)
        if not kinds:
            return None
        due_at = case((jobs.c.state == _RUNNING, jobs.c.lease_expires_at), else_=jobs.c.run_after)
        query = select(type_coerce(func.min(due_at), UtcDateTime)).where(
            jobs.c.state.in_((*_RETRYABLE, _RUNNING)), jobs.c.kind.in_(kinds)
        )
        found: datetime | None = await self._c.scalar(query)
        return found

    async def renew_lease(
        self,
        job_id: int,
        owner: str,
        lease_expires_at: datetime,
        now: datetime,
        *,
        progress: JsonObject | None = None,
    ) -> bool:
        values: dict[str, Any] = {"lease_expires_at": lease_expires_at, "updated_at": now}
        if progress is not None:
            values["progress"] = dict(progress)
        result = await self._c.execute(update(jobs).where(_held(job_id, owner)).values(**values))
        return bool(result.rowcount)

    async def complete_job(self, job_id: int, owner: str, now: datetime) -> bool:
        result = await self._c.execute(
            update(jobs)
            .where(_held(job_id, owner))
            .values(
                state=JobState.SUCCEEDED.value,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
                finished_at=now,
            )
        )
        return bool(result.rowcount)

    async def fail_job(
        self, job_id: int, owner: str, now: datetime, error: str, retry_at: datetime
    ) -> JobState | None:
        last = jobs.c.attempts >= jobs.c.max_attempts
        statement = (
            update(jobs)
            .where(_held(job_id, owner))
            .values(
                state=case((last, JobState.DEAD.value), else_=JobState.FAILED.value),
                run_after=case((last, jobs.c.run_after), else_=_at(retry_at)),
                finished_at=case((last, _at(now)), else_=null()),
                last_error=error,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
            .returning(jobs.c.state)
        )
        state = (await self._c.execute(statement)).scalar()
        return None if state is None else JobState(state)

    async def release_job(self, job_id: int, owner: str, now: datetime) -> bool:
        result = await self._c.execute(
            update(jobs)
            .where(_held(job_id, owner))
            .values(
                state=JobState.QUEUED.value,
                attempts=jobs.c.attempts - 1,
                run_after=now,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
        )
        return bool(result.rowcount)

    async def get_job(self, job_id: int) -> Job | None:
        row = (await self._c.execute(select(jobs).where(jobs.c.id == job_id))).first()
        return None if row is None else _job(row)

    async def list_jobs(
        self,
        *,
        state: JobState | None = None,
        kind: str | None = None,
        before_id: int | None = None,
        limit: int | None = None,
    ) -> list[Job]:
        query = select(jobs).order_by(jobs.c.id.desc()).limit(limit)
        if state is not None:
            query = query.where(jobs.c.state == state.value)
        if kind is not None:
            query = query.where(jobs.c.kind == kind)
        if before_id is not None:
            query = query.where(jobs.c.id < before_id)
        return [_job(row) for row in await self._c.execute(query)]

    async def delete_finished_jobs(self, finished_before: datetime) -> int:
        result = await self._c.execute(
            delete(jobs).where(jobs.c.state.in_(_FINAL), jobs.c.finished_at < finished_before)
        )
        return int(result.rowcount)

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
        seconds = int(interval.total_seconds())
        if seconds < 1:
            raise ValueError("a schedule's interval must be at least one second")
        created = await self._c.execute(
            self._insert(job_schedules)
            .values(
                name=name,
                kind=kind,
                payload=dict(payload),
                interval_seconds=seconds,
                next_run_at=first_run_at or now,
            )
            .on_conflict_do_nothing(index_elements=["name"])
        )
        latest = now + timedelta(seconds=seconds)
        if created.rowcount:
            stored = await self.get_schedule(name)
            assert stored is not None
            return stored
        await self._c.execute(
            update(job_schedules)
            .where(job_schedules.c.name == name)
            .values(
                kind=kind,
                payload=dict(payload),
                interval_seconds=seconds,
                next_run_at=case(
                    (job_schedules.c.next_run_at > latest, _at(latest)),
                    else_=job_schedules.c.next_run_at,
                ),
            )
        )
        stored = await self.get_schedule(name)
        assert stored is not None
        return stored

    async def get_schedule(self, name: str) -> JobSchedule | None:
        query = select(job_schedules).where(job_schedules.c.name == name)
        row = (await self._c.execute(query)).first()
        return None if row is None else _schedule(row)

    async def list_schedules(self) -> list[JobSchedule]:
        query = select(job_schedules).order_by(job_schedules.c.name)
        return [_schedule(row) for row in await self._c.execute(query)]

    async def due_schedules(self, now: datetime) -> list[JobSchedule]:
        query = (
            select(job_schedules)
            .where(job_schedules.c.next_run_at <= now)
            .order_by(job_schedules.c.next_run_at, job_schedules.c.name)
        )
        return [_schedule(row) for row in await self._c.execute(query)]

    async def advance_schedule(self, name: str, due_at: datetime, next_run_at: datetime) -> bool:
        result = await self._c.execute(
            update(job_schedules)
            .where(job_schedules.c.name == name, job_schedules.c.next_run_at == due_at)
            .values(next_run_at=next_run_at)
        )
        return bool(result.rowcount)

    async def delete_schedule(self, name: str) -> bool:
        result = await self._c.execute(delete(job_schedules).where(job_schedules.c.name == name))
        return bool(result.rowcount)


def _at(value: datetime) -> Any:
    # A bound datetime outside a comparison with a column would get plain DateTime, not
    # UtcDateTime's conversion to UTC (which SQLite's offset-less text depends on).
    return literal(value, UtcDateTime)


def _job(row: Row[Any]) -> Job:
    return Job(
        id=row.id,
        kind=row.kind,
        payload=row.payload,
        state=JobState(row.state),
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        run_after=row.run_after,
        created_at=row.created_at,
        updated_at=row.updated_at,
        dedupe_key=row.dedupe_key,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        last_error=row.last_error,
        progress=row.progress,
        finished_at=row.finished_at,
    )


def _schedule(row: Row[Any]) -> JobSchedule:
    return JobSchedule(
        name=row.name,
        kind=row.kind,
        payload=row.payload,
        interval=timedelta(seconds=row.interval_seconds),
        next_run_at=row.next_run_at,
    )
