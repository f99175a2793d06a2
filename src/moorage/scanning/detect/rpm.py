"""RPM packages, from the SQLite rpmdb (RHEL 9, Fedora, Amazon Linux 2023).

The database is ``var/lib/rpm/rpmdb.sqlite`` (or ``usr/lib/sysimage/rpm/rpmdb.sqlite``); its
``Packages`` table holds one rpm header per package in the ``blob`` column. It is opened in
memory (``sqlite3`` ``deserialize``), never written to disk. A header blob is:

    int32 il, int32 dl                  (big-endian: index entries, data store bytes)
    il * (int32 tag, type, offset, count)
    dl bytes of data

from which we read NAME, VERSION, RELEASE, EPOCH, ARCH, SOURCERPM and the file names
(BASENAMES + DIRNAMES by DIRINDEXES, or the older OLDFILENAMES). The older Berkeley DB
(``Packages``) and NDB (``Packages.db``) databases are reported as unsupported, not guessed at.
"""

from __future__ import annotations

import sqlite3
import struct
from dataclasses import dataclass

from moorage.domain.digests import Digest
from moorage.domain.inventory import InventoryIssue, OperatingSystem, Package, PackageType
from moorage.scanning.detect._common import layer_of, normalise, os_purl, read_kept
from moorage.scanning.files import ImageFiles
from moorage.scanning.inventory import Detected, FunctionDetector

DIRECTORIES = ("var/lib/rpm/", "usr/lib/sysimage/rpm/")
SQLITE = "rpmdb.sqlite"
BERKELEY_DB = "Packages"
NDB = "Packages.db"
UNSUPPORTED = "rpm database in Berkeley DB/NDB format is not supported"

# Tags and types from rpm's rpmtag.h.
NAME, VERSION, RELEASE, EPOCH, ARCH = 1000, 1001, 1002, 1003, 1022
OLDFILENAMES, SOURCERPM = 1027, 1044
DIRINDEXES, BASENAMES, DIRNAMES = 1116, 1117, 1118
_INT32, _STRING, _STRING_ARRAY, _I18NSTRING = 4, 6, 8, 9
_MAX_ENTRIES = 1 << 16
_MAX_DATA = 256 << 20


def wants(path: str) -> bool:
    return any(path == d + SQLITE for d in DIRECTORIES)


def detect(files: ImageFiles, os: OperatingSystem | None) -> Detected:
    issues: list[InventoryIssue] = []
    for directory in DIRECTORIES:
        path = directory + SQLITE
        if files.entry(path) is not None:
            data = read_kept(files, path, issues)
            if data is None:
                return Detected(issues=tuple(issues))
            return _read_sqlite(files, path, data, os)
    for directory in DIRECTORIES:
        for name in (BERKELEY_DB, NDB):
            path = directory + name
            if files.entry(path) is not None:
                issue = InventoryIssue(path, UNSUPPORTED, layer_of(files, path))
                return Detected(issues=(issue,))
    return Detected()


DETECTOR = FunctionDetector("rpm", wants, detect)


@dataclass(frozen=True, slots=True)
class Header:
    """The fields of an rpm header we use."""

    name: str
    version: str
    release: str
    epoch: int | None
    arch: str | None
    source_rpm: str | None
    files: tuple[str, ...]


def _read_sqlite(files: ImageFiles, path: str, data: bytes, os: OperatingSystem | None) -> Detected:
    layer = layer_of(files, path)
    try:
        connection = sqlite3.connect(":memory:")
        try:
            connection.deserialize(data)
            rows = connection.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        return Detected(issues=(InventoryIssue(path, f"rpm database unreadable: {exc}", layer),))

    packages: list[Package] = []
    owned: set[str] = set()
    issues: list[InventoryIssue] = []
    for hnum, blob in rows:
        try:
            header = parse_header(bytes(blob))
        except ValueError as exc:
            issues.append(InventoryIssue(path, f"rpm header {hnum} unreadable: {exc}", layer))
            continue
        if header.name == "gpg-pubkey":  # imported signing keys, not software
            continue
        owned.update(p for p in map(normalise, header.files) if p)
        packages.append(_package(header, path, layer, os))
    return Detected(packages=tuple(packages), owned=frozenset(owned), issues=tuple(issues))


def _package(
    header: Header, path: str, layer: Digest | None, os: OperatingSystem | None
) -> Package:
    version_release = f"{header.version}-{header.release}"
    version = version_release if header.epoch is None else f"{header.epoch}:{version_release}"
    source_name, source_version = header.name, version
    if header.source_rpm:
        parsed = split_source_rpm(header.source_rpm)
        if parsed is not None:
            source_name, source_version = parsed
            if header.epoch is not None:
                source_version = f"{header.epoch}:{source_version}"
    epoch = {} if header.epoch is None else {"epoch": str(header.epoch)}
    purl = os_purl("rpm", os, "redhat", header.name, version_release, header.arch, epoch)
    return Package(
        type=PackageType.RPM,
        name=header.name,
        version=version,
        purl=purl,
        path=path,
        layer=layer,
        source_name=source_name,
        source_version=source_version,
        arch=header.arch,
    )


def split_source_rpm(source_rpm: str) -> tuple[str, str] | None:
    """``glibc-2.34-60.el9.src.rpm`` -> ``("glibc", "2.34-60.el9")``."""
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if source_rpm.endswith(suffix):
            stem = source_rpm[: -len(suffix)]
            name, _, version_release = stem.rpartition("-")
            name, _, version = name.rpartition("-")
            if name and version and version_release:
                return name, f"{version}-{version_release}"
    return None


def parse_header(blob: bytes) -> Header:
    """An rpm header blob as the rpmdb stores it (no lead, no magic). ValueError when broken."""
    if len(blob) < 8:
        raise ValueError("header too short")
    il, dl = struct.unpack_from(">II", blob, 0)
    if il > _MAX_ENTRIES or dl > _MAX_DATA or 8 + il * 16 + dl > len(blob):
        raise ValueError("header sizes out of bounds")
    store = blob[8 + il * 16 : 8 + il * 16 + dl]
    entries: dict[int, tuple[int, int, int]] = {}
    for i in range(il):
        tag, type_, offset, count = struct.unpack_from(">IIII", blob, 8 + i * 16)
        if offset > dl:
            raise ValueError(f"tag {tag} offset out of bounds")
        entries[tag] = (type_, offset, count)

    def strings(tag: int) -> list[str]:
        entry = entries.get(tag)
        if entry is None:
            return []
        type_, offset, count = entry
        if type_ not in (_STRING, _STRING_ARRAY, _I18NSTRING):
            raise ValueError(f"tag {tag} is not a string")
        if type_ == _STRING:
            count = 1
        values: list[str] = []
        for _ in range(count):
            end = store.find(b"\0", offset)
            if end < 0:
                raise ValueError(f"tag {tag} string not terminated")
            values.append(store[offset:end].decode("utf-8", errors="replace"))
            offset = end + 1
        return values

    def ints(tag: int) -> list[int]:
        entry = entries.get(tag)
        if entry is None:
            return []
        type_, offset, count = entry
        if type_ != _INT32 or offset + 4 * count > len(store):
            raise ValueError(f"tag {tag} is not an int32 array")
        return list(struct.unpack_from(f">{count}i", store, offset))

    def string(tag: int) -> str | None:
        values = strings(tag)
        return values[0] if values else None

    name, version, release = string(NAME), string(VERSION), string(RELEASE)
    if not name or version is None or release is None:
        raise ValueError("no NAME, VERSION or RELEASE")
    basenames, dirnames, dirindexes = strings(BASENAMES), strings(DIRNAMES), ints(DIRINDEXES)
    if basenames:
        if len(dirindexes) != len(basenames) or any(not 0 <= i < len(dirnames) for i in dirindexes):
            raise ValueError("file names inconsistent")
        paths = tuple(dirnames[i] + b for i, b in zip(dirindexes, basenames, strict=True))
    else:
        paths = tuple(strings(OLDFILENAMES))
    epochs = ints(EPOCH)
    return Header(
        name=name,
        version=version,
        release=release,
        epoch=epochs[0] if epochs else None,
        arch=string(ARCH),
        source_rpm=string(SOURCERPM),
        files=paths,
    )
