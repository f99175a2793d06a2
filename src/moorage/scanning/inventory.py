"""An image's inventory: its operating system, then its packages, from its final filesystem.

Detectors are small and independent. Each says which paths it needs the *contents* of
(``wants``: the layer reader keeps only those, see :func:`wanted`) and, given the files and the
operating system (None when none was recognised), returns what it found (:class:`Detected`):
packages, the paths those packages own, and issues.

:func:`inventory` runs the OS package detectors (dpkg, apk, rpm) and then the language ones
(Python, npm, Go, Java), and applies one rule between them: a language package recorded in a
file that an OS package owns (``usr/lib/python3/dist-packages/...``, a Go binary in
``usr/bin``) is the OS package's, so it is not reported again.

Writing a detector (``moorage/scanning/detect/<name>.py``)::

    def wants(path: str) -> bool:
        return path.endswith(".dist-info/METADATA")

    def detect(files: ImageFiles, os: OperatingSystem | None) -> Detected:
        ...  # read with files.read(path); walk names with files.paths()
        return Detected(packages=(...,), issues=(...,))

    DETECTOR = FunctionDetector("python", wants, detect)

Paths are normalised as in :mod:`moorage.scanning.files` (relative to the root, no leading
``/``); ``Package.path`` is the file that recorded the package and ``Package.layer`` the layer
that last wrote it (``files.entry(path).layer``). A detector never raises on bad input: it
reports an :class:`InventoryIssue` and carries on with the rest.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from moorage.domain.inventory import (
    Inventory,
    InventoryIssue,
    OperatingSystem,
    Package,
    PackageType,
)
from moorage.scanning.files import ImageFiles

#: Package types that an operating system's package manager installs; their owned paths hide
#: language packages recorded in the same files.
OS_PACKAGE_TYPES = frozenset({PackageType.DEB, PackageType.APK, PackageType.RPM})


@dataclass(frozen=True, slots=True)
class Detected:
    """What one detector found: packages, the paths they own (normalised; only OS package
    managers record these), and what it could not read."""

    packages: tuple[Package, ...] = ()
    owned: frozenset[str] = field(default_factory=frozenset)
    issues: tuple[InventoryIssue, ...] = ()


class Detector(Protocol):
    """A package detector. ``name`` is short and stable (``"dpkg"``, ``"python"``)."""

    @property
    def name(self) -> str: ...

    def wants(self, path: str) -> bool:
        """Whether the detector needs the contents of the file at ``path``."""
        ...

    def detect(self, files: ImageFiles, os: OperatingSystem | None) -> Detected:
        """The packages in ``files``; ``os`` is the image's operating system, if recognised."""
        ...


@dataclass(frozen=True, slots=True)
class FunctionDetector:
    """A :class:`Detector` made of two module-level functions."""

    name: str
    wants: Callable[[str], bool]
    detect: Callable[[ImageFiles, OperatingSystem | None], Detected]


# Modules of moorage.scanning.detect, each exposing DETECTOR; OS package managers first.
_DETECTOR_MODULES = ("dpkg", "apk", "rpm", "python", "npm", "golang", "java")


@functools.cache
def default_detectors() -> tuple[Detector, ...]:
    """Every detector, OS package managers first. Imported lazily (the detector modules import
    this one) and once: :func:`wanted` runs for every path of every layer."""
    modules = [importlib.import_module(f"moorage.scanning.detect.{m}") for m in _DETECTOR_MODULES]
    return tuple(module.DETECTOR for module in modules)


def wanted(path: str, detectors: Sequence[Detector] | None = None) -> bool:
    """Whether any detector (or the OS detection) needs the contents of ``path``: the
    predicate the layer reader keeps files by."""
    from moorage.scanning.detect import os_release

    if os_release.wants(path):
        return True
    return any(d.wants(path) for d in (default_detectors() if detectors is None else detectors))


def inventory(files: ImageFiles, detectors: Sequence[Detector] | None = None) -> Inventory:
    """Detect the operating system and the packages in ``files``."""
    from moorage.scanning.detect import os_release

    if detectors is None:
        detectors = default_detectors()
    issues: list[InventoryIssue] = list(files.issues)
    os, os_issues = os_release.detect(files)
    issues.extend(os_issues)

    results = [d.detect(files, os) for d in detectors]
    owned: set[str] = set()
    for result in results:
        owned.update(result.owned)
        issues.extend(result.issues)
    packages = [
        p
        for result in results
        for p in result.packages
        if p.type in OS_PACKAGE_TYPES or p.path not in owned
    ]
    packages.sort(key=_sort_key)

    unsupported = None
    if os is None and not packages:
        unsupported = _unsupported_reason(issues)
    return Inventory(os=os, packages=tuple(packages), issues=tuple(issues), unsupported=unsupported)


def _sort_key(p: Package) -> tuple[str, str, str, str, str]:
    return (p.type.value, p.namespace or "", p.name, p.version, p.path)


def _unsupported_reason(issues: Iterable[InventoryIssue]) -> str:
    problems = [f"{i.path}: {i.problem}" for i in issues]
    reason = "no operating system (os-release) and no package found"
    if problems:
        reason += "; " + "; ".join(problems[:3])
    return reason
