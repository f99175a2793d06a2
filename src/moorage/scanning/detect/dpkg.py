"""Debian packages: ``var/lib/dpkg/status``, and distroless's ``var/lib/dpkg/status.d/*``.

Each paragraph (deb822, parsed by python-debian) is one package; only installed ones count
(``Status: install ok installed``, or ``hold ok installed``; distroless's files have no
``Status`` and are all installed). ``Source:`` names the source package, optionally with its
version (``glibc``, ``bash (5.2.15-2)``); without it the binary is its own source. Owned files
come from ``var/lib/dpkg/info/<name>[:<arch>].list``, and for distroless from
``status.d/<name>.md5sums``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from debian.deb822 import Deb822

from moorage.domain.inventory import InventoryIssue, OperatingSystem, Package, PackageType
from moorage.scanning.detect._common import layer_of, normalise, os_purl, read_kept
from moorage.scanning.files import ImageFiles
from moorage.scanning.inventory import Detected, FunctionDetector

STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d/"
INFO = "var/lib/dpkg/info/"

_SOURCE = re.compile(r"^(?P<name>\S+)(?:\s+\((?P<version>[^)]+)\))?$")
_INSTALLED = {("install", "ok", "installed"), ("hold", "ok", "installed")}


def wants(path: str) -> bool:
    if path == STATUS:
        return True
    if path.startswith(STATUS_D):
        return "/" not in path[len(STATUS_D) :]
    return path.startswith(INFO) and path.endswith(".list") and "/" not in path[len(INFO) :]


def detect(files: ImageFiles, os: OperatingSystem | None) -> Detected:
    issues: list[InventoryIssue] = []
    packages: list[Package] = []
    owned: set[str] = set()

    data = read_kept(files, STATUS, issues)
    if data is not None:
        for fields in _paragraphs(files, STATUS, data, issues):
            if tuple(fields.get("Status", "").split()) not in _INSTALLED:
                continue
            package = _package(files, STATUS, fields, os, issues)
            if package is not None:
                packages.append(package)
                owned.update(_list_files(files, package))

    for path in files.paths():
        if not path.startswith(STATUS_D) or "/" in path[len(STATUS_D) :]:
            continue
        if path.endswith(".md5sums"):
            owned.update(_md5sums(files.read(path)))
            continue
        data = read_kept(files, path, issues)
        if data is None:
            continue
        for fields in _paragraphs(files, path, data, issues):
            status = fields.get("Status")
            if status is not None and tuple(status.split()) not in _INSTALLED:
                continue
            package = _package(files, path, fields, os, issues)
            if package is not None:
                packages.append(package)
                owned.update(_list_files(files, package))
    return Detected(packages=tuple(packages), owned=frozenset(owned), issues=tuple(issues))


DETECTOR = FunctionDetector("dpkg", wants, detect)


def _paragraphs(
    files: ImageFiles, path: str, data: bytes, issues: list[InventoryIssue]
) -> Iterator[dict[str, str]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    try:
        for paragraph in Deb822.iter_paragraphs(text.splitlines(keepends=True)):
            yield dict(paragraph)
    except ValueError as exc:
        issues.append(
            InventoryIssue(path, f"dpkg database unreadable: {exc}", layer_of(files, path))
        )


def _package(
    files: ImageFiles,
    path: str,
    fields: dict[str, str],
    os: OperatingSystem | None,
    issues: list[InventoryIssue],
) -> Package | None:
    name = fields.get("Package", "").strip()
    version = fields.get("Version", "").strip()
    if not name or not version:
        issues.append(
            InventoryIssue(
                path, f"dpkg entry without Package or Version: {name!r}", layer_of(files, path)
            )
        )
        return None
    arch = fields.get("Architecture", "").strip() or None
    source_name, source_version = name, version
    source = fields.get("Source", "").strip()
    if source:
        match = _SOURCE.match(source)
        if match is not None:
            source_name = match["name"]
            source_version = match["version"] or version
    return Package(
        type=PackageType.DEB,
        name=name,
        version=version,
        purl=os_purl("deb", os, "debian", name, version, arch),
        path=path,
        layer=layer_of(files, path),
        source_name=source_name,
        source_version=source_version,
        arch=arch,
    )


def _list_files(files: ImageFiles, package: Package) -> set[str]:
    """The files ``package`` owns, from ``info/<name>:<arch>.list`` or ``info/<name>.list``."""
    for candidate in (f"{INFO}{package.name}:{package.arch}.list", f"{INFO}{package.name}.list"):
        data = files.read(candidate)
        if data is not None:
            lines = data.decode("utf-8", errors="replace").splitlines()
            return {p for p in map(normalise, lines) if p}
    return set()


def _md5sums(data: bytes | None) -> set[str]:
    """Paths in an md5sums file (``<md5>  <path>`` lines)."""
    if data is None:
        return set()
    owned: set[str] = set()
    for line in data.decode("utf-8", errors="replace").splitlines():
        _, _, path = line.strip().partition("  ")
        if path and (normalised := normalise(path)):
            owned.add(normalised)
    return owned
