"""Helpers shared by the OS package detectors (dpkg, apk, rpm)."""

from __future__ import annotations

from packageurl import PackageURL

from moorage.domain.digests import Digest
from moorage.domain.inventory import InventoryIssue, OperatingSystem
from moorage.scanning.files import ImageFiles


def layer_of(files: ImageFiles, path: str) -> Digest | None:
    """The layer that last wrote ``path`` (None when unknown)."""
    entry = files.entry(path)
    return None if entry is None else entry.layer


def read_kept(files: ImageFiles, path: str, issues: list[InventoryIssue]) -> bytes | None:
    """The contents of ``path``; None when it is absent, and also when it exists but its
    contents were not kept (over the reader's size limit), which is then an issue."""
    entry = files.entry(path)
    if entry is None:
        return None
    if entry.data is None:
        issues.append(InventoryIssue(path, "package database not read (too large)", entry.layer))
    return entry.data


def os_purl(
    purl_type: str,
    os: OperatingSystem | None,
    default_namespace: str,
    name: str,
    version: str,
    arch: str | None,
    extra: dict[str, str] | None = None,
) -> str:
    """``pkg:<type>/<os id>/<name>@<version>?arch=<arch>&distro=<os id>-<version id>``."""
    namespace = os.id if os is not None else default_namespace
    qualifiers: dict[str, str] = dict(extra or {})
    if arch:
        qualifiers["arch"] = arch
    if os is not None and os.version_id:
        qualifiers["distro"] = f"{os.id}-{os.version_id}"
    purl = PackageURL(
        type=purl_type, namespace=namespace, name=name, version=version, qualifiers=qualifiers
    )
    return str(purl.to_string())


def normalise(path: str) -> str:
    """A path as a package database writes it (``/usr/bin/x``, ``usr/bin/x``), normalised like
    :mod:`moorage.scanning.files` paths."""
    return "/".join(p for p in path.strip().split("/") if p and p != ".")
