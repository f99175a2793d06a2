"""Read advisory records from a file, a folder or an archive of an advisory database.

A record is a ``.json``, ``.yaml`` or ``.yml`` file holding one OSV document; anything else
(licences, ``.id-allocator``, READMEs) and anything under a dot-directory (``.git``, ``.github``)
is not an advisory and is skipped. Archives (``.tar.gz``, ``.tgz``, ``.zip``) are read member by
member in memory, never extracted. A record that cannot be read or parsed is reported to
``on_error`` (logged as a warning when there is none) and the import carries on.
"""

from __future__ import annotations

import json
import logging
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from moorage.scanning.advisories.model import Advisory
from moorage.scanning.advisories.osv import InvalidAdvisory, parse_osv

logger = logging.getLogger(__name__)

RECORD_SUFFIXES = (".json", ".yaml", ".yml")
TAR_SUFFIXES = (".tar.gz", ".tgz")


@dataclass(frozen=True, slots=True)
class RecordError:
    """A record that was skipped: where it is (``archive!member`` inside archives) and why."""

    location: str
    message: str


def iter_records(
    path: str | Path, on_error: Callable[[RecordError], None] | None = None
) -> Iterator[Advisory]:
    """Yield the advisories under ``path``: a record file, a folder (recursively) or an archive."""
    path = Path(path)
    report = on_error or _log_error
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            relative = child.relative_to(path)
            if child.is_file() and _is_record(PurePosixPath(relative.as_posix())):
                yield from _parse(str(child), child.read_bytes, report)
    elif path.name.endswith(TAR_SUFFIXES):
        yield from _iter_tar(path, report)
    elif path.name.endswith(".zip"):
        yield from _iter_zip(path, report)
    elif _is_record(PurePosixPath(path.name)):
        yield from _parse(str(path), path.read_bytes, report)
    else:
        report(RecordError(str(path), "not an advisory record, folder or archive"))


def _is_record(relative: PurePosixPath) -> bool:
    return relative.suffix in RECORD_SUFFIXES and not any(
        part.startswith(".") for part in relative.parts
    )


def _iter_tar(path: Path, report: Callable[[RecordError], None]) -> Iterator[Advisory]:
    try:
        with tarfile.open(path, mode="r:*") as archive:
            for member in archive:
                if member.isfile() and _is_record(PurePosixPath(member.name)):

                    def read(member: tarfile.TarInfo = member) -> bytes:
                        stream = archive.extractfile(member)
                        assert stream is not None  # a regular file always has a stream
                        return stream.read()

                    yield from _parse(f"{path}!{member.name}", read, report)
    except (OSError, tarfile.TarError, EOFError) as error:
        report(RecordError(str(path), f"unreadable or truncated archive: {error}"))


def _iter_zip(path: Path, report: Callable[[RecordError], None]) -> Iterator[Advisory]:
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.is_dir() and _is_record(PurePosixPath(info.filename)):

                    def read(info: zipfile.ZipInfo = info) -> bytes:
                        return archive.read(info)

                    yield from _parse(f"{path}!{info.filename}", read, report)
    except (OSError, zipfile.BadZipFile) as error:
        report(RecordError(str(path), f"unreadable archive: {error}"))


def _parse(
    location: str, read: Callable[[], bytes], report: Callable[[RecordError], None]
) -> Iterator[Advisory]:
    try:
        data = read()
        document = json.loads(data) if location.endswith(".json") else yaml.safe_load(data)
        if not isinstance(document, dict):
            raise InvalidAdvisory("the file does not hold one OSV record (a mapping)")
        advisory = parse_osv(document, source=location)
    except (OSError, ValueError, yaml.YAMLError, zipfile.BadZipFile) as error:
        # ValueError covers InvalidAdvisory, JSONDecodeError and UnicodeDecodeError.
        report(RecordError(location, f"{type(error).__name__}: {error}"))
        return
    yield advisory


def _log_error(error: RecordError) -> None:
    logger.warning("skipped advisory record %s: %s", error.location, error.message)
