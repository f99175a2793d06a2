"""Background jobs: their records, states, retry delays, and the error text they keep.

A job's life (``JobState``)::

    queued ──claim──▶ running ──handler returns──▶ succeeded
      ▲                │
      │                ├──handler raises, attempts < max──▶ failed ──(run_after, claim)──▶ running
      │                ├──handler raises, attempts = max──▶ dead
      │                ├──lease expires (worker lost): claimable again, or dead after max
      └────────────────┴──worker stops: the lease given back, the attempt not counted

``queued``, ``running`` and ``failed`` are *pending*: a dedupe key is unique among pending
jobs, so enqueuing a job whose key a pending job holds does nothing. ``succeeded`` and
``dead`` are final.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

# A job's payload and progress: JSON objects.
JsonObject = Mapping[str, Any]

# What last_error keeps of an exception: its type and the first line of its message, no
# traceback (tracebacks go to the log). Handlers must not put secrets in exception messages.
ERROR_TEXT_LIMIT = 500

# The last_error of a job whose lease expired on its last allowed attempt (it goes dead). The
# cause is not known: the worker crashed, stalled, or could not reach the database (perhaps
# only to record that the handler had succeeded). It replaces an earlier attempt's error.
LEASE_EXPIRED_ERROR = (
    "lease expired on the last attempt; the worker stopped, stalled or lost the database"
)


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # an attempt failed; the next one is due at run_after
    DEAD = "dead"  # max_attempts attempts failed: the dead-letter state

    @property
    def pending(self) -> bool:
        return self in PENDING_STATES


PENDING_STATES = frozenset({JobState.QUEUED, JobState.RUNNING, JobState.FAILED})


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored. ``attempts`` counts the attempts started, including the one running."""

    id: int
    kind: str
    payload: JsonObject
    state: JobState
    attempts: int
    max_attempts: int
    run_after: datetime
    created_at: datetime
    updated_at: datetime
    dedupe_key: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    last_error: str | None = None
    progress: JsonObject | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class JobSchedule:
    """A periodic job: at ``next_run_at`` a job of ``kind`` with ``payload`` is enqueued
    (dedupe key :func:`schedule_dedupe_key`), and ``next_run_at`` moves on by ``interval``."""

    name: str
    kind: str
    payload: JsonObject
    interval: timedelta
    next_run_at: datetime


def schedule_dedupe_key(name: str) -> str:
    """The dedupe key of the jobs a schedule enqueues: one pending run per schedule."""
    return f"schedule:{name}"


def retry_delay(attempts: int, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential backoff: ``base`` after the first failed attempt, doubling, at most ``cap``."""
    if attempts < 1:
        return base
    # 2**attempts overflows timedelta long before it matters; stop doubling at the cap.
    delay = base
    for _ in range(attempts - 1):
        delay *= 2
        if delay >= cap:
            return cap
    return min(delay, cap)


def next_run(previous: datetime, interval: timedelta, now: datetime) -> datetime:
    """When a schedule that was due at ``previous`` runs next: one interval later, or one
    interval from ``now`` when that is already past (missed runs are not caught up)."""
    following = previous + interval
    return following if following > now else now + interval


def error_text(error: BaseException) -> str:
    """What a failed job records: ``Type: first line of the message``, bounded."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 1] + "…"
