"""Installed Python distributions.

Read from the metadata every installer leaves behind:

- ``.../site-packages/<name>-<version>.dist-info/METADATA`` (and ``dist-packages``, Debian's
  name for the same directory): wheels installed by pip, uv, poetry...;
- ``<name>.egg-info/PKG-INFO`` (directory form) and ``<name>.egg-info`` (a single file, as
  distutils and old setuptools wrote it), anywhere: ``setup.py install`` and develop installs.

Both are RFC 822 headers; ``Name`` and ``Version`` are required (a file without them is
reported as an issue). The purl carries the name normalised as PEP 503 says
(``pkg:pypi/zope-interface@6.0``), what PyPI and OSV's PyPI advisories key on;
``Package.name`` keeps the name as the distribution spells it.
"""

from __future__ import annotations

import re
from email.parser import HeaderParser

from packageurl import PackageURL

from moorage.domain.inventory import InventoryIssue, OperatingSystem, Package, PackageType
from moorage.scanning.files import ImageFiles
from moorage.scanning.inventory import Detected, FunctionDetector

_METADATA = re.compile(
    r"(?:^|/)(?:site-packages|dist-packages)/[^/]+\.dist-info/METADATA$"
    r"|(?:^|/)[^/]+\.egg-info/PKG-INFO$"
    r"|(?:^|/)[^/]+\.egg-info$"
)


def wants(path: str) -> bool:
    return _METADATA.search(path) is not None


def normalise(name: str) -> str:
    """A distribution name as PEP 503 normalises it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def detect(files: ImageFiles, os: OperatingSystem | None = None) -> Detected:
    packages: list[Package] = []
    issues: list[InventoryIssue] = []
    for path, entry, data in files.kept(wants):
        headers = HeaderParser().parsestr(data.decode("utf-8", errors="replace"))
        name = (headers.get("Name") or "").strip()
        version = (headers.get("Version") or "").strip()
        if not name or not version:
            issues.append(
                InventoryIssue(path, "Python package metadata without Name or Version", entry.layer)
            )
            continue
        purl = PackageURL(type="pypi", name=normalise(name), version=version).to_string()
        packages.append(
            Package(
                type=PackageType.PYPI,
                name=name,
                version=version,
                purl=purl,
                path=path,
                layer=entry.layer,
            )
        )
    return Detected(packages=tuple(packages), issues=tuple(issues))


DETECTOR = FunctionDetector("python", wants, detect)
