"""Alpine packages: ``lib/apk/db/installed``.

One record per package, records separated by blank lines, one ``<letter>:<value>`` field a
line: ``P`` name, ``V`` version, ``A`` architecture, ``o`` origin (the source package, what
Alpine's secdb names), ``F`` a directory and the ``R`` lines after it the files in it (the
package's owned paths).
"""

from __future__ import annotations

from moorage.domain.inventory import InventoryIssue, OperatingSystem, Package, PackageType
from moorage.scanning.detect._common import layer_of, normalise, os_purl, read_kept
from moorage.scanning.files import ImageFiles
from moorage.scanning.inventory import Detected, FunctionDetector

INSTALLED = "lib/apk/db/installed"


def wants(path: str) -> bool:
    return path == INSTALLED


def detect(files: ImageFiles, os: OperatingSystem | None) -> Detected:
    issues: list[InventoryIssue] = []
    data = read_kept(files, INSTALLED, issues)
    if data is None:
        return Detected(issues=tuple(issues))
    layer = layer_of(files, INSTALLED)
    packages: list[Package] = []
    owned: set[str] = set()
    for record in _records(data.decode("utf-8", errors="replace")):
        name, version = record.fields.get("P", ""), record.fields.get("V", "")
        if not name or not version:
            issues.append(InventoryIssue(INSTALLED, f"apk record without P or V: {name!r}", layer))
            continue
        arch = record.fields.get("A") or None
        packages.append(
            Package(
                type=PackageType.APK,
                name=name,
                version=version,
                purl=os_purl("apk", os, "alpine", name, version, arch),
                path=INSTALLED,
                layer=layer,
                source_name=record.fields.get("o") or name,
                source_version=version,
                arch=arch,
            )
        )
        owned.update(record.files)
    return Detected(packages=tuple(packages), owned=frozenset(owned), issues=tuple(issues))


DETECTOR = FunctionDetector("apk", wants, detect)


class _Record:
    __slots__ = ("fields", "files")

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.files: set[str] = set()


def _records(text: str) -> list[_Record]:
    records: list[_Record] = []
    record = _Record()
    directory = ""
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if record.fields:
                records.append(record)
            record, directory = _Record(), ""
            continue
        key, sep, value = line.partition(":")
        if not sep or len(key) != 1:
            continue
        if key == "F":
            directory = normalise(value)
            if directory:
                record.files.add(directory)
        elif key == "R":
            path = normalise(f"{directory}/{value}")
            if path:
                record.files.add(path)
        elif key not in record.fields:  # first wins; later letters repeat per file (a:, Z:)
            record.fields[key] = value
    return records
