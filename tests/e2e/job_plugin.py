"""Test-only job handlers, loaded into ``moorage`` processes through
``MOORAGE_TEST_JOB_HANDLERS=tests.e2e.job_plugin:register`` (see ``moorage/workers/wiring.py``).

``test.gated`` appends ``start <job id> <attempt> <pid>`` to ``$MOORAGE_TEST_JOB_DIR/log``,
waits until the file ``gate`` exists in that folder, then appends ``done ...``: a job that
blocks mid-run for as long as a test wants.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from moorage.domain.jobs import Job
from moorage.workers.runner import JobProgress, Runner

DIR_ENV = "MOORAGE_TEST_JOB_DIR"
GATED = "test.gated"


def register(runner: Runner) -> None:
    runner.register(GATED, gated)


async def gated(job: Job, progress: JobProgress) -> None:
    folder = Path(os.environ[DIR_ENV])
    _note(folder, "start", job)
    while not (folder / "gate").exists():  # noqa: ASYNC110  (another process makes it)
        await asyncio.sleep(0.02)
    _note(folder, "done", job)


def _note(folder: Path, event: str, job: Job) -> None:
    with (folder / "log").open("a") as log:
        log.write(f"{event} {job.id} {job.attempts} {os.getpid()}\n")
