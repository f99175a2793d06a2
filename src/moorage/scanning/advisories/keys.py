"""The key advisories are stored and looked up by: an OSV ecosystem and a package name in the
form that ecosystem compares names in.

Both sides use :func:`package_key`: the import (for every ``affected`` entry) and the matcher
(for every package of an image), so that ``Django``, ``django`` and ``DJANGO`` on PyPI, or
``@Scope/Pkg`` on npm, meet.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_PEP503_SEPARATORS = re.compile(r"[-_.]+")

# Ecosystems whose package names compare without regard to case (OSV schema, "affected[].package").
_CASE_INSENSITIVE = ("pypi", "npm", "maven", "nuget", "packagist", "rubygems")


class PackageKey(NamedTuple):
    ecosystem: str  # as OSV names it: "PyPI", "Go", "npm", "Maven", "Debian:12", "Alpine:v3.20"
    name: str


def package_key(ecosystem: str, name: str) -> PackageKey:
    """The lookup key of ``name`` in ``ecosystem`` (a PEP 503 name on PyPI, lower case where
    the ecosystem ignores case, as given elsewhere)."""
    family = ecosystem.split(":", 1)[0].lower()
    if family == "pypi":
        name = _PEP503_SEPARATORS.sub("-", name).lower()
    elif family in _CASE_INSENSITIVE:
        name = name.lower()
    return PackageKey(ecosystem, name)
