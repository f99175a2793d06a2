"""Version ordering per OSV ecosystem, and whether a version is inside an ``affected`` entry.

:func:`scheme_of` maps an OSV ecosystem name to a :class:`Scheme` (how that ecosystem orders
versions, through ``univers``); :func:`is_affected` follows OSV's evaluation algorithm
(https://ossf.github.io/osv-schema/#evaluation):

* a version listed in ``versions`` is affected;
* in each non-GIT range, events are sorted by version (``introduced: "0"`` first) and walked:
  ``introduced`` (v >= e) sets affected, ``fixed`` (v >= e) and ``last_affected`` (v > e)
  clear it; the range counts only if v is below one of its ``limit`` events (if any);
* any range, or the list, is enough.

Versions that do not parse in the scheme are never affected (logged at debug), and a range
holding an event that does not parse is skipped as a whole: dropping only its ``fixed``
would report every later version. GIT ranges need the repository's history and are ignored.

Parsed versions and sorted ranges are cached (``lru_cache``): a scan compares the same few
hundred versions against the same few thousand ranges, and parsing dominates otherwise.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from enum import Enum
from functools import lru_cache
from typing import Any

from univers.versions import (
    AlpineLinuxVersion,
    DebianVersion,
    GolangVersion,
    InvalidVersion,
    MavenVersion,
    PypiVersion,
    RpmVersion,
    SemverVersion,
)

from moorage.scanning.advisories.model import Affected, EventKind, Range

log = logging.getLogger(__name__)


class Scheme(Enum):
    """How an ecosystem orders its versions (the univers class that implements it)."""

    DEBIAN = "debian"  # Debian and Ubuntu: dpkg's epoch:upstream-revision, ``~`` sorts first
    ALPINE = "alpine"  # apk-tools: _alpha/_beta/_pre/_rc < release < _cvs/_svn/_git/_hg/_p, -rN
    RPM = "rpm"  # rpmvercmp with epochs and ``~``/``^``
    PYPI = "pypi"  # PEP 440
    SEMVER = "semver"  # npm: SemVer 2.0
    GO = "go"  # Go modules' semver, with or without "v"; toolchains as go1.21rc2 / 1.21.3
    MAVEN = "maven"  # Maven's ComparableVersion (qualifiers: alpha < beta < rc < snapshot < "")


# OSV ecosystem name (before any ":release" suffix) -> scheme.
_ECOSYSTEM_SCHEMES: dict[str, Scheme] = {
    "debian": Scheme.DEBIAN,
    "ubuntu": Scheme.DEBIAN,
    "alpine": Scheme.ALPINE,
    "wolfi": Scheme.ALPINE,
    "chainguard": Scheme.ALPINE,
    "red hat": Scheme.RPM,
    "almalinux": Scheme.RPM,
    "rocky linux": Scheme.RPM,
    "opensuse": Scheme.RPM,
    "suse": Scheme.RPM,
    "mageia": Scheme.RPM,
    "photon os": Scheme.RPM,
    "openeuler": Scheme.RPM,
    "pypi": Scheme.PYPI,
    "npm": Scheme.SEMVER,
    "go": Scheme.GO,
    "maven": Scheme.MAVEN,
}

_CLASSES: dict[Scheme, Any] = {
    Scheme.DEBIAN: DebianVersion,
    Scheme.ALPINE: AlpineLinuxVersion,
    Scheme.RPM: RpmVersion,
    Scheme.PYPI: PypiVersion,
    Scheme.SEMVER: SemverVersion,
    Scheme.GO: GolangVersion,
    Scheme.MAVEN: MavenVersion,
}

# univers compares Alpine versions with Gentoo's rules, which lack apk's _cvs/_svn/_git/_hg
# (they raise). All post-release suffixes become one _p whose number keeps apk's order
# (cvs < svn < git < hg < p, then the suffix's own number): ``_git20230101`` -> ``_p3<20 digits>``.
_APK_POST_SUFFIX = re.compile(r"_(cvs|svn|git|hg|p)(\d*)(?=_|-|$)")
_APK_POST_RANK = {"cvs": 1, "svn": 2, "git": 3, "hg": 4, "p": 5}

# A Go toolchain version as the linker records it (go1.21.3, go1.20, go1.21rc2); the Go
# vulnerability database writes these as semver: 1.20.0, 1.21.0-rc.2.
_GO_TOOLCHAIN = re.compile(r"^(?:go)?(\d+)\.(\d+)(?:\.(\d+))?(?:(rc|beta)(\d+))?$")


def scheme_of(ecosystem: str) -> Scheme | None:
    """The version scheme of an OSV ecosystem (``"Debian:12"``, ``"PyPI"``), or None."""
    return _ECOSYSTEM_SCHEMES.get(ecosystem.split(":", 1)[0].strip().lower())


def _normalise(scheme: Scheme, text: str) -> str:
    if scheme is Scheme.ALPINE:
        return _APK_POST_SUFFIX.sub(
            lambda m: f"_p{_APK_POST_RANK[m[1]]}{int(m[2] or 0):020d}", text
        )
    if scheme is Scheme.GO:
        toolchain = _GO_TOOLCHAIN.match(text)
        if toolchain is not None:
            major, minor, patch, pre, number = toolchain.groups()
            text = f"{major}.{minor}.{patch or 0}" + (f"-{pre}.{number}" if pre else "")
    return text


@lru_cache(maxsize=65536)
def parse(scheme: Scheme, text: str) -> Any | None:
    """``text`` as a comparable version of ``scheme``, or None when it does not parse."""
    try:
        return _CLASSES[scheme](_normalise(scheme, text.strip()))
    except (InvalidVersion, ValueError, TypeError, AttributeError, IndexError) as exc:
        # univers' parsers raise more than InvalidVersion on odd input.
        log.debug("version %r is not a valid %s version: %s", text, scheme.value, exc)
        return None


@lru_cache(maxsize=262144)
def _less(scheme: Scheme, left: str, right: str) -> bool:
    """``left < right`` in ``scheme``, both known to parse. Cached by text: one fix version
    closes many CVEs of a package, and every binary package of a source asks again.

    Only "<" is used anywhere: univers' Alpine versions inherit a ">=" and "<=" that compare
    the text, not apk's order ("3.3.1-r9" >= "3.3.1-r10" is True there).
    """
    ours, theirs = parse(scheme, left), parse(scheme, right)
    return ours is not None and theirs is not None and bool(ours < theirs)


# Events at one version keep the record's order (a stable sort), so "introduced: X" followed
# by "fixed: X" leaves X unaffected. "introduced: 0" (None here) sorts before every version.
_Events = tuple[tuple[EventKind, str | None], ...]


@lru_cache(maxsize=65536)
def _sorted_events(scheme: Scheme, range_: Range) -> _Events | None:
    """The range's events sorted by version, limits last; None if a version does not parse."""
    events: list[tuple[EventKind, str | None]] = []
    for kind, text in range_.events:
        if kind == "introduced" and text == "0":
            events.append((kind, None))
            continue
        if kind == "limit" and "*" in text:
            continue  # the implicit limit: infinity
        if parse(scheme, text) is None:
            log.debug("range skipped: its %s event %r does not parse", kind, text)
            return None
        events.append((kind, text))
    ordered = sorted(
        (e for e in events if e[0] != "limit"),
        key=lambda e: _Key(scheme, e[1]),
    )
    return (*ordered, *(e for e in events if e[0] == "limit"))


class _Key:
    """Sort key: a version's text in a scheme; None sorts before every version."""

    __slots__ = ("scheme", "text")

    def __init__(self, scheme: Scheme, text: str | None) -> None:
        self.scheme, self.text = scheme, text

    def __lt__(self, other: _Key) -> bool:
        if other.text is None:
            return False
        return self.text is None or _less(self.scheme, self.text, other.text)


def in_range(scheme: Scheme, version: str, range_: Range) -> bool:
    """Whether ``version`` (which parses in ``scheme``) is inside ``range_`` (never for GIT)."""
    if range_.type == "GIT":
        return False
    events = _sorted_events(scheme, range_)
    if events is None:
        return False
    limits = [at for kind, at in events if kind == "limit" and at is not None]
    if limits and not any(_less(scheme, version, limit) for limit in limits):
        return False
    affected = False
    for kind, at in events:
        if kind == "introduced":
            if at is None or not _less(scheme, version, at):
                affected = True
        elif kind == "fixed" and at is not None:
            if not _less(scheme, version, at):
                affected = False
        elif kind == "last_affected" and at is not None and _less(scheme, at, version):
            affected = False
    return affected


# univers' Maven versions can be equal with different hashes ("1.0", "1.0.0"), and its Alpine
# versions cannot be hashed at all: those are compared one by one.
_UNEVEN_HASH = frozenset((Scheme.MAVEN, Scheme.ALPINE))


@lru_cache(maxsize=16384)
def _parsed_listed(scheme: Scheme, versions: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(v for v in (parse(scheme, text) for text in versions) if v is not None)


@lru_cache(maxsize=16384)
def _parsed_set(scheme: Scheme, versions: tuple[str, ...]) -> frozenset[Any]:
    return frozenset(_parsed_listed(scheme, versions))


def _listed_includes(scheme: Scheme, versions: tuple[str, ...], parsed: Any) -> bool:
    """Whether a listed version equals ``parsed`` in the scheme ("1.0" == "1.0.0" on PyPI)."""
    if scheme in _UNEVEN_HASH:
        return any(parsed == other for other in _parsed_listed(scheme, versions))
    return parsed in _parsed_set(scheme, versions)


def is_affected(scheme: Scheme, version: str, affected: Affected) -> bool:
    """Whether ``version`` (text, in ``scheme``) is affected by the ``affected`` entry.

    Never raises on bad versions: an unparseable installed version is not affected.
    """
    if version in affected.versions:
        return True
    parsed = parse(scheme, version)
    if parsed is None:
        return False
    if affected.versions and _listed_includes(scheme, affected.versions, parsed):
        return True
    return any(in_range(scheme, version, r) for r in affected.ranges)


def fixes_after(scheme: Scheme, version: str, fixed: Iterable[str]) -> tuple[str, ...]:
    """The versions of ``fixed`` greater than ``version``, ascending in ``scheme``, once each.

    Unparseable fixes are dropped; if ``version`` does not parse, all parseable ones are kept.
    """
    comparable = parse(scheme, version) is not None
    found: list[str] = []
    for text in dict.fromkeys(fixed):
        if parse(scheme, text) is None:
            continue
        if not comparable or _less(scheme, version, text):
            found.append(text)
    return tuple(sorted(found, key=lambda t: _Key(scheme, t)))
