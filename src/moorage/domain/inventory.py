"""What an image contains, as the scanner reports it: its operating system and packages.

Pure values, built by ``moorage.scanning`` (layers -> files -> packages) and matched against
advisories. Every package carries a Package URL (purl, https://github.com/package-url/purl-spec),
the key advisories are matched by, and where it was found (path, and the layer that last wrote
that path), so that a finding can say which layer to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from moorage.domain.digests import Digest


class PackageType(StrEnum):
    """The package manager or ecosystem a package belongs to (purl types where they exist)."""

    DEB = "deb"
    APK = "apk"
    RPM = "rpm"
    PYPI = "pypi"
    NPM = "npm"
    GOLANG = "golang"
    MAVEN = "maven"


@dataclass(frozen=True, slots=True)
class OperatingSystem:
    """From ``/etc/os-release`` (or ``/usr/lib/os-release``): ``ID``, ``VERSION_ID`` and the
    rest as the file gives them (``id`` lower-case, as os-release specifies)."""

    id: str
    version_id: str | None = None
    version_codename: str | None = None
    pretty_name: str | None = None
    id_like: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package.

    ``source_name``/``source_version``: the source package an OS package was built from (what
    Debian's and Alpine's advisories name); None when the binary package is its own source.
    ``path``: the file that recorded it (``var/lib/dpkg/status``, a ``METADATA`` file, a
    binary); ``layer``: the layer that last wrote that file.
    """

    type: PackageType
    name: str
    version: str
    purl: str
    path: str
    layer: Digest | None = None
    source_name: str | None = None
    source_version: str | None = None
    arch: str | None = None
    namespace: str | None = None  # Maven group id; npm scope without "@"


@dataclass(frozen=True, slots=True)
class InventoryIssue:
    """Something in the image the scanner refused or could not read, and why (a hostile or
    broken layer: path traversal, a link out of the root, a bomb, an unreadable database)."""

    path: str
    problem: str
    layer: Digest | None = None


@dataclass(frozen=True, slots=True)
class Inventory:
    """An image's operating system (None when none is recognised), packages and issues.
    ``unsupported`` says why the image cannot be scanned at all (ECR's UNSUPPORTED_IMAGE)."""

    os: OperatingSystem | None
    packages: tuple[Package, ...] = ()
    issues: tuple[InventoryIssue, ...] = field(default=())
    unsupported: str | None = None
