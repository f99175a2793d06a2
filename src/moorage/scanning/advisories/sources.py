"""Read advisory records from a file, a folder or an archive of an advisory database.

A record is a ``.json``, ``.yaml`` or ``.yml`` file; anything else (licences, ``.id-allocator``,
READMEs) and anything under a dot-directory (``.git``, ``.github``) is not an advisory and is
skipped. Archives (``.tar.gz``, ``.tgz``, ``.zip``) are read member by member in memory, never
extracted. Each document's format is recognised by its shape, then parsed by its module:

* OSV (``id`` with ``modified`` or ``affected``): :mod:`.osv`, one advisory;
* Node.js security WG npm record (``module_name``): :mod:`.nodejs`, one advisory; its runtime
  records (``vuln/core``, ``vuln/deps``) and ``index.json`` are skipped without a report;
* Alpine secdb (``packages`` and ``distroversion``): :mod:`.alpine_secdb`, one per id;
* Debian Security Tracker export (package -> id -> issue with ``releases``):
  :mod:`.debian_tracker`, one per id.

A record that cannot be read, recognised or parsed is reported to ``on_error`` (logged as a
warning when there is none) and the import carries on; so is an unusable entry inside a document
that holds many (``location#where``), without losing the document's other advisories.
"""

from __future__ import annotations

import json
import logging
import tarfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from moorage.scanning.advisories.alpine_secdb import is_secdb, iter_secdb
from moorage.scanning.advisories.debian_tracker import is_debian_tracker, iter_debian_tracker
from moorage.scanning.advisories.model import Advisory
from moorage.scanning.advisories.nodejs import is_nodejs, is_nodejs_runtime, parse_nodejs
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
        document = json.loads(data) if location.endswith(".json") else _load_yaml(data)
        if not isinstance(document, dict):
            raise InvalidAdvisory("the file does not hold an advisory document (a mapping)")
        advisories = _dispatch(document, location, report)
    except (OSError, ValueError, yaml.YAMLError, zipfile.BadZipFile) as error:
        # ValueError covers InvalidAdvisory, JSONDecodeError and UnicodeDecodeError.
        report(RecordError(location, f"{type(error).__name__}: {error}"))
        return
    yield from advisories


def _dispatch(
    document: Mapping[str, object], location: str, report: Callable[[RecordError], None]
) -> Iterator[Advisory]:
    """The advisories of one document, by its format; raises for a single-record document that
    is unusable, and reports the unusable entries of many-record documents as they come."""

    def entry_error(where: str, error: InvalidAdvisory) -> None:
        report(RecordError(f"{location}#{where}", f"{type(error).__name__}: {error}"))

    if "id" in document and ("modified" in document or "affected" in document):
        return iter((parse_osv(document, source=location),))
    if is_nodejs(document):
        return iter((parse_nodejs(document, source=location),))
    if is_nodejs_runtime(document):
        return iter(())
    if is_secdb(document):
        # Validated up front (the generator would only raise once iterated, outside the try).
        return iter(list(iter_secdb(document, source=location, on_invalid=entry_error)))
    if is_debian_tracker(document):
        return iter_debian_tracker(document, source=location, on_invalid=entry_error)
    raise InvalidAdvisory("not an OSV, Node.js WG, Alpine secdb or Debian tracker document")


def _log_error(error: RecordError) -> None:
    logger.warning("skipped advisory record %s: %s", error.location, error.message)


# libyaml's safe loader when PyYAML was built with it: it parses the PyPA database about eight
# times faster than the pure-Python one.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(data: bytes) -> object:
    return yaml.load(data, Loader=_YAML_LOADER)
