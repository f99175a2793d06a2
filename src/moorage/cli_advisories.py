"""``moorage advisories import [--source NAME] PATH...`` and ``moorage advisories status``.

``import`` reads advisory databases from files, folders or archives (``.tar.gz``, ``.zip``) of
OSV records, for sites without Internet access (``services/advisories.py``). Each PATH is one
import under a source named after the file; importing a file again replaces its records.
``--source`` names the source instead (one PATH only), so that a newer download of the same
database replaces the records of the older rather than adding to them. A progress bar goes to
stderr, then one line per path on stdout (records stored, records skipped, seconds), and the
skipped records' reasons on stderr. It exits 1 when a path does not exist (importing nothing)
or when every record of a path failed.

``status`` prints one line per source (records, errors, when it was imported, its newest
advisory) and when the database last changed.

Both take the storage options of ``moorage serve`` and only open the metadata database (no
blob store). They work while a server runs on the same data: imports write in short
transactions that SQLite queues behind the server's writers.

This module adds the ``advisories`` group to ``moorage.cli.main`` when imported (``cli.py``
imports it last).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from moorage.cli import main, run_async, settings_from, storage_options

if TYPE_CHECKING:
    from moorage.config import Settings
    from moorage.ports.advisories import AdvisorySource
    from moorage.ports.metadata import MetadataStore
    from moorage.services.advisories import ImportProgress, ImportReport

T = TypeVar("T")


@main.group()
def advisories() -> None:
    """The vulnerability advisory database (imported from files)."""


@advisories.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--source",
    metavar="NAME",
    help="Import under NAME instead of the file's name (one PATH only): a newer download "
    "of the same database then replaces the older one's records.",
)
@storage_options
def import_(paths: tuple[Path, ...], source: str | None, **options: Any) -> None:
    """Import advisory records (OSV JSON or YAML) from files, folders or archives."""
    from moorage.ports.clock import system_clock
    from moorage.services.advisories import import_paths
    from moorage.services.scanning import request_rescan

    if source is not None and len(paths) > 1:
        _error("--source names the source of one PATH; import the others separately")
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        _error(f"no such file or folder: {', '.join(missing)}")
    settings = settings_from(options)

    async def work(metadata: MetadataStore) -> list[ImportReport]:
        started = system_clock()
        with _ProgressBar() as bar:
            reports = await import_paths(
                metadata, paths, system_clock, progress=bar.update, source=source
            )
        withdrawn = {key for report in reports for key in report.withdrawn_keys}
        if any(report.records for report in reports) or withdrawn:
            await request_rescan(metadata, since=started, now=system_clock(), keys=withdrawn)
        return reports

    reports = _with_metadata(settings, work)
    for report in reports:
        click.echo(_summary(report))
        for error in report.first_errors:
            click.echo(f"skipped {error.location}: {error.message}", err=True)
        if report.errors > len(report.first_errors):
            click.echo(f"... and {report.errors - len(report.first_errors)} more", err=True)
    failed = [report.path for report in reports if report.errors and not report.records]
    if failed:
        _error(f"every record failed in {', '.join(str(path) for path in failed)}")


@advisories.command("status")
@storage_options
def status(**options: Any) -> None:
    """Show the imported advisory sources and when the database last changed."""
    settings = settings_from(options)

    async def work(metadata: MetadataStore) -> tuple[list[AdvisorySource], datetime | None]:
        async with metadata.read() as tx:
            return await tx.advisory_sources(), await tx.advisories_updated_at()

    sources, updated_at = _with_metadata(settings, work)
    if not sources:
        click.echo("no advisories imported")
        return
    for line in _table(sources):
        click.echo(line)
    click.echo(f"database updated at {_time(updated_at)}")


def _with_metadata(settings: Settings, work: Callable[[MetadataStore], Awaitable[T]]) -> T:
    """Run ``work`` on the metadata store alone (migrated to the current schema)."""
    from moorage.storage.metadata.sql.store import open_sql_metadata_store

    async def main_() -> T:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        metadata = await open_sql_metadata_store(settings.resolved_database_url)
        try:
            return await work(metadata)
        finally:
            await metadata.close()

    return run_async(main_())


def _summary(report: ImportReport) -> str:
    """``pypa-advisory-db-3ccb612.tar.gz: 3,512 records, 1 error, 4.2 s``."""
    errors = "error" if report.errors == 1 else "errors"
    records = "record" if report.records == 1 else "records"
    withdrawn = f", {report.withdrawn:,} withdrawn" if report.withdrawn else ""
    return (
        f"{report.source}: {report.records:,} {records}, {report.errors:,} {errors}"
        f"{withdrawn}, {report.seconds:.1f} s"
    )


def _table(sources: list[AdvisorySource]) -> list[str]:
    rows = [("SOURCE", "RECORDS", "ERRORS", "IMPORTED AT", "NEWEST ADVISORY")]
    for source in sources:
        imported = (
            _time(source.finished_at)
            if source.finished_at is not None
            else f"unfinished (started {_time(source.started_at)})"
        )
        rows.append(
            (
                source.name,
                f"{source.records:,}",
                f"{source.errors:,}",
                imported,
                _time(source.newest_modified),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in (1, 2) else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def _time(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%dT%H:%M:%SZ}"


def _error(message: str) -> NoReturn:
    click.echo(f"moorage: error: {message}", err=True)
    sys.exit(1)


class _ProgressBar:
    """One click progress bar per path on stderr, counting records. Its length is the number
    of record files when known, and grows when a file holds several records."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._path: Path | None = None
        self._bar: Any = None
        self._done = 0

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *_: object) -> None:
        self._stack.close()

    def update(self, progress: ImportProgress) -> None:
        if progress.path != self._path:
            self._stack.close()  # the previous path is done
            self._stack = ExitStack()
            self._bar = self._stack.enter_context(
                click.progressbar(
                    # An iterable without a length hint: click then draws a counter.
                    iter(()) if progress.total is None else None,
                    length=progress.total,
                    label=progress.path.name,
                    file=sys.stderr,
                    show_pos=True,
                )
            )
            self._path, self._done = progress.path, 0
        if self._bar.length is not None and progress.done > self._bar.length:
            self._bar.length = progress.done
        self._bar.update(progress.done - self._done)
        self._done = progress.done
