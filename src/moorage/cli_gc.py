"""``moorage gc [--dry-run] [--grace-period SECONDS] [--upload-grace-period SECONDS]``.

Collects garbage once (``services/gc.py``; docs/gc.md) and prints one line saying what it
freed, or with ``--dry-run`` what it would free. It takes the storage options of ``moorage
serve`` and runs safely while a server serves pushes and pulls on the same data. A progress
bar per phase goes to stderr.

This module adds the ``gc`` command to ``moorage.cli.main`` when imported (``cli.py``
imports it last).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from typing import Any, TextIO

import click

from moorage.cli import main, run_async, settings_from, storage_options
from moorage.config import Settings
from moorage.services.gc import (
    DEFAULT_GRACE_PERIOD,
    DEFAULT_UPLOAD_GRACE_PERIOD,
    GarbageCollector,
    GcProgress,
    GcReport,
)


@main.command()
@storage_options
@click.option("--dry-run", is_flag=True, help="Report what would be freed; delete nothing.")
@click.option(
    "--grace-period",
    type=click.FloatRange(min=0),
    default=DEFAULT_GRACE_PERIOD.total_seconds(),
    show_default=True,
    metavar="SECONDS",
    help=(
        "Spare unreferenced blobs (and orphan files) used more recently than this, and"
        " referrers whose subject is missing pushed more recently than this."
    ),
)
@click.option(
    "--upload-grace-period",
    type=click.FloatRange(min=0),
    default=DEFAULT_UPLOAD_GRACE_PERIOD.total_seconds(),
    show_default=True,
    metavar="SECONDS",
    help="Spare upload sessions (and staging areas) written more recently than this.",
)
def gc(dry_run: bool, grace_period: float, upload_grace_period: float, **options: Any) -> None:
    """Delete referrers of deleted images, unreferenced blobs, abandoned uploads and orphan
    files."""
    settings = settings_from(options)
    report = run_async(
        collect(
            settings,
            dry_run=dry_run,
            grace_period=timedelta(seconds=grace_period),
            upload_grace_period=timedelta(seconds=upload_grace_period),
        )
    )
    click.echo(report.summary())


async def collect(
    settings: Settings,
    *,
    dry_run: bool,
    grace_period: timedelta,
    upload_grace_period: timedelta,
) -> GcReport:
    from moorage.ports.clock import system_clock
    from moorage.storage.blobs import build_blob_store
    from moorage.storage.metadata.sql.store import open_sql_metadata_store

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    metadata = await open_sql_metadata_store(settings.resolved_database_url)
    blobs = build_blob_store(settings.blob_store, root=settings.data_dir)
    try:
        collector = GarbageCollector(
            metadata,
            blobs,
            system_clock,
            grace_period=grace_period,
            upload_grace_period=upload_grace_period,
        )
        with _ProgressBars() as bars:
            return await collector.run(dry_run=dry_run, progress=bars.update)
    finally:
        await blobs.close()
        await metadata.close()


class _ProgressBars:
    """On a terminal, one click progress bar per phase, opened at the phase's first report.
    Phases do not count their work first, so a bar counts items handled and shows its total
    (100%) once the phase ends. Elsewhere (a log, a pipe), one line per phase as it ends."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._stack = ExitStack()
        self._bars: dict[str, Any] = {}
        self._done: dict[str, int] = {}

    def __enter__(self) -> _ProgressBars:
        return self

    def __exit__(self, *_: object) -> None:
        self._stack.close()

    def update(self, progress: GcProgress) -> None:
        if not self._tty:
            if progress.total is not None:
                click.echo(f"{progress.phase}: {progress.total} handled", file=self._stream)
            return
        bar = self._bars.get(progress.phase)
        if bar is None:
            self._stack.close()  # the previous phase is over
            self._stack = ExitStack()
            bar = self._stack.enter_context(
                click.progressbar(_unknown_length(), label=progress.phase, file=self._stream)
            )
            self._bars[progress.phase] = bar
            self._done[progress.phase] = 0
        step = progress.done - self._done[progress.phase]
        if step > 0:
            bar.update(step)
            self._done[progress.phase] = progress.done
        if progress.total is not None:
            # An empty phase is complete too: a bar of 0 of 0 would stay at 0%.
            bar.length = max(progress.total, 1)
            bar.pos = bar.length
            bar.render_progress()


def _unknown_length() -> Iterator[int]:
    """An iterable without a length hint: click then draws a counter, not a percentage."""
    yield from ()
