"""``moorage worker`` and ``moorage jobs``: background jobs from the shell.

::

    moorage worker                       run background jobs until SIGTERM/SIGINT
    moorage jobs list [--state S] [--kind K] [--limit N]

Both take the storage options of ``moorage serve`` (``--data-dir``, ``--config``,
``--database-url``). ``moorage worker`` on SQLite refuses to start while another process
(a ``moorage serve`` with workers on, or another worker) runs that database's jobs; see
``moorage/workers/wiring.py``. On SIGTERM it stops claiming, lets running jobs finish for
``shutdown_timeout`` seconds, then gives their leases back.

This module adds its commands to ``moorage.cli.main`` when imported (``cli.py`` imports it
last).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import TYPE_CHECKING, Any

import click

from moorage.cli import (
    _configure_logging,
    _with_registry,
    fail,
    main,
    run_async,
    settings_from,
    storage_options,
)
from moorage.domain.jobs import Job, JobState

if TYPE_CHECKING:
    from moorage.app import Registry
    from moorage.config import Settings


@main.command()
@storage_options
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
def worker(**options: Any) -> None:
    """Run background jobs without serving: lifecycle policies and their previews, image
    scans (on push, on request, and the rescans an advisory import asks for), and garbage
    collection."""
    from moorage.workers.wiring import WorkersBusy

    settings = settings_from(options)
    _configure_logging(settings.log_level)
    try:
        run_async(_work(settings))
    except (WorkersBusy, ValueError) as exc:  # ValueError: an unsupported database URL
        fail(str(exc))


async def _work(settings: Settings) -> None:
    from moorage.app import open_registry
    from moorage.workers.wiring import start_workers

    registry = await open_registry(settings)
    try:
        workers = await start_workers(registry, required=True)
        assert workers is not None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        print(f"moorage worker {workers.runner.owner} running", file=sys.stderr, flush=True)
        await stop.wait()
        await workers.stop(settings.shutdown_timeout)
    finally:
        await registry.close()


@main.group()
def jobs() -> None:
    """Inspect background jobs."""


@jobs.command("list")
@click.option("--state", type=click.Choice([state.value for state in JobState]))
@click.option("--kind", help="Only jobs of this kind.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@storage_options
def jobs_list(state: str | None, kind: str | None, limit: int, **options: Any) -> None:
    """List jobs, newest first: id, kind, state, attempts, when due, progress, last error."""

    async def list_jobs(registry: Registry) -> None:
        async with registry.metadata.read() as tx:
            found = await tx.list_jobs(
                state=JobState(state) if state else None, kind=kind, limit=limit
            )
        for line in format_jobs(found):
            click.echo(line)

    try:
        _with_registry(options, list_jobs)
    except ValueError as exc:  # an unsupported database URL
        fail(str(exc))


HEADERS = ("ID", "KIND", "STATE", "ATTEMPTS", "RUN AFTER", "PROGRESS", "LAST ERROR")


def format_jobs(found: list[Job]) -> list[str]:
    """A table with a header row, columns padded to their widest cell (the last unpadded)."""
    rows = [HEADERS] + [
        (
            str(job.id),
            job.kind,
            job.state.value,
            f"{job.attempts}/{job.max_attempts}",
            job.run_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
            json.dumps(job.progress, separators=(",", ":")) if job.progress else "-",
            job.last_error or "-",
        )
        for job in found
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS) - 1)]
    return [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]
