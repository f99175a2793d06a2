"""Installed npm packages: ``node_modules/<name>/package.json`` and
``node_modules/@<scope>/<name>/package.json``, at any depth (nested ``node_modules`` of a
package's own dependencies included).

Only a ``package.json`` directly inside a package directory of ``node_modules`` counts: the
``package.json`` files of a package's own fixtures, examples or sub-folders
(``node_modules/foo/test/fixture/package.json``) are not installed packages. The name and
version come from the file (an aliased install, ``npm i alias@npm:real``, sits in
``node_modules/alias`` but is ``real``); a file without both, or not JSON, is skipped silently
(npm tolerates such files, and so do we).

``Package.name`` is the bare name and ``Package.namespace`` the scope without ``@``; the purl is
``pkg:npm/%40scope/name@version`` as the purl spec writes it.
"""

from __future__ import annotations

import json
import re

from packageurl import PackageURL

from moorage.domain.inventory import OperatingSystem, Package, PackageType
from moorage.scanning.files import ImageFiles
from moorage.scanning.inventory import Detected, FunctionDetector

_PACKAGE_JSON = re.compile(r"(?:^|/)node_modules/(?:@[^/]+/)?[^/@][^/]*/package\.json$")

#: package.json files bigger than this are not manifests of an installed package.
MAX_PACKAGE_JSON = 4 * 1024 * 1024


def wants(path: str) -> bool:
    return _PACKAGE_JSON.search(path) is not None


def detect(files: ImageFiles, os: OperatingSystem | None = None) -> Detected:
    packages: list[Package] = []
    for path, entry, data in files.kept(wants):
        if len(data) > MAX_PACKAGE_JSON:
            continue
        try:
            manifest = json.loads(data)
        except (ValueError, RecursionError):
            continue
        if not isinstance(manifest, dict):
            continue
        full_name = manifest.get("name")
        version = manifest.get("version")
        if not isinstance(full_name, str) or not isinstance(version, str):
            continue
        if not full_name or not version:
            continue
        scope: str | None = None
        name = full_name
        if full_name.startswith("@"):
            scope, _, name = full_name[1:].partition("/")
            if not scope or not name:
                continue
        purl = PackageURL(
            type="npm", namespace=None if scope is None else "@" + scope, name=name, version=version
        ).to_string()
        packages.append(
            Package(
                type=PackageType.NPM,
                name=name,
                version=version,
                purl=purl,
                path=path,
                layer=entry.layer,
                namespace=scope,
            )
        )
    return Detected(packages=tuple(packages))


DETECTOR = FunctionDetector("npm", wants, detect)
