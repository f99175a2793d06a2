"""Import advisory databases from files (air-gapped: nothing is downloaded).

:func:`import_paths` reads each path (a record file, a folder or an archive; see
``scanning/advisories/sources.py``) and writes what it reads into the metadata store as one
import per path, in transactions of :data:`BATCH_SIZE` advisories. Short transactions are the
point: on SQLite a running server's writers wait for each one, and memory holds one batch
(plus the one being parsed), however large the database.

Parsing runs in a worker thread, a batch ahead of the writes, so that the event loop stays
free and decompressing overlaps with the database work.
"""

from __future__ import annotations

import asyncio
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path, PurePosixPath

from moorage.ports.advisories import advisory_fits
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore
from moorage.scanning.advisories.keys import PackageKey
from moorage.scanning.advisories.model import Advisory
from moorage.scanning.advisories.sources import (
    RECORD_SUFFIXES,
    TAR_SUFFIXES,
    RecordError,
    iter_records,
)

BATCH_SIZE = 500
# Record errors kept per import for the report (the count covers all of them).
KEPT_ERRORS = 20


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """Where the import of ``path`` is: ``done`` records read (stored or skipped). ``total`` is
    the number of record files when counting them was cheap, else None; a file may hold more
    than one record, so ``done`` can pass it."""

    path: Path
    done: int
    total: int | None


@dataclass(frozen=True, slots=True)
class ImportReport:
    """One path imported: ``records`` stored, ``errors`` skipped (the first few in
    ``first_errors``), in ``seconds`` of wall time; ``withdrawn`` advisories of the source that
    the path no longer has were deleted, and were indexed under ``withdrawn_keys``."""

    path: Path
    source: str
    records: int
    errors: int
    seconds: float
    first_errors: tuple[RecordError, ...] = field(default=())
    withdrawn: int = 0
    withdrawn_keys: frozenset[PackageKey] = field(default=frozenset())


def source_name(path: Path) -> str:
    """The source a path is imported under: its file (or folder) name, which for a
    downloaded database names the database and its version (``pypa-advisory-db-3ccb612.tar.gz``)."""
    return path.resolve().name


async def import_paths(
    metadata: MetadataStore,
    paths: Sequence[Path],
    clock: Clock,
    *,
    progress: Callable[[ImportProgress], None] | None = None,
    source: str | None = None,
) -> list[ImportReport]:
    """Import each of ``paths``, in order, under ``source`` (default: :func:`source_name`);
    return a report per path.

    Raises FileNotFoundError, importing nothing, when a path does not exist. A record that
    cannot be read or stored is counted and skipped; the import carries on. Advisories already
    stored under the same source and id are replaced (see ``ports/advisories.py``).

    A path read without a single error is the whole database: the source's advisories that it
    no longer has (withdrawn, or merged into another) are deleted. After any error nothing is
    deleted, since an unreadable record may be one of them.
    """
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise FileNotFoundError(f"no such file or folder: {', '.join(missing)}")
    return [
        await _import_one(metadata, path, clock, progress, source or source_name(path))
        for path in paths
    ]


async def _import_one(
    metadata: MetadataStore,
    path: Path,
    clock: Clock,
    progress: Callable[[ImportProgress], None] | None,
    source: str,
) -> ImportReport:
    started = time.monotonic()
    errors: list[RecordError] = []
    error_count = 0

    def on_error(error: RecordError) -> None:
        nonlocal error_count
        error_count += 1
        if len(errors) < KEPT_ERRORS:
            errors.append(error)

    location, total = await asyncio.to_thread(_locate, path)
    async with metadata.transaction() as tx:
        import_id = await tx.begin_advisory_import(source, location, clock())
    records = _fitting(iter_records(path, on_error), on_error)
    stored = 0
    seen: set[str] = set()
    pending = asyncio.create_task(asyncio.to_thread(_take, records, BATCH_SIZE))
    try:
        while batch := await pending:
            # Parse the next batch while this one is written.
            pending = asyncio.create_task(asyncio.to_thread(_take, records, BATCH_SIZE))
            async with metadata.transaction() as tx:
                await tx.put_advisories(import_id, batch, clock())
            stored += len(batch)
            seen.update(advisory.id for advisory in batch)
            if progress is not None:
                progress(ImportProgress(path, stored + error_count, total))
    finally:
        if not pending.done():
            # Interrupted: let the parser's batch finish before the generator is dropped.
            await asyncio.wait([pending])
    withdrawn: set[PackageKey] = set()
    withdrawn_count = 0
    async with metadata.transaction() as tx:
        if error_count == 0:
            withdrawn_count, withdrawn = await tx.withdraw_advisories(source, seen)
        await tx.finish_advisory_import(import_id, clock(), stored, error_count)
    return ImportReport(
        path=path,
        source=source,
        records=stored,
        errors=error_count,
        seconds=time.monotonic() - started,
        first_errors=tuple(errors),
        withdrawn=withdrawn_count,
        withdrawn_keys=frozenset(withdrawn),
    )


def _locate(path: Path) -> tuple[str, int | None]:
    """Where ``path`` is (absolute) and how many record files it holds, off the event loop."""
    return str(path.resolve()), count_record_files(path)


def _fitting(
    advisories: Iterator[Advisory], on_error: Callable[[RecordError], None]
) -> Iterator[Advisory]:
    """``advisories`` without those the store would refuse, which are reported instead: one
    odd record must not fail its whole batch."""
    for advisory in advisories:
        if (problem := advisory_fits(advisory)) is None:
            yield advisory
        else:
            on_error(RecordError(advisory.source, problem))


def _take(advisories: Iterator[Advisory], size: int) -> list[Advisory]:
    return list(islice(advisories, size))


def count_record_files(path: Path) -> int | None:
    """How many files under ``path`` look like records, as ``iter_records`` chooses them; None
    when the archive cannot be listed (the import then reports why). Decompressing a tar.gz
    to list it costs a fraction of parsing it."""
    try:
        if path.is_dir():
            return sum(
                1
                for child in path.rglob("*")
                if child.is_file() and _looks_like_record(child.relative_to(path).as_posix())
            )
        if path.name.endswith(TAR_SUFFIXES):
            with tarfile.open(path, mode="r:*") as archive:
                return sum(1 for m in archive if m.isfile() and _looks_like_record(m.name))
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                return sum(
                    1
                    for info in archive.infolist()
                    if not info.is_dir() and _looks_like_record(info.filename)
                )
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError):
        return None
    return 1


def _looks_like_record(relative: str) -> bool:
    pure = PurePosixPath(relative)
    return pure.suffix in RECORD_SUFFIXES and not any(p.startswith(".") for p in pure.parts)
