"""Parse Alpine's security database (https://secdb.alpinelinux.org/): one file per release and
repository (``v3.20/main.json``; the older archive has the same document as YAML).

A document is ``{"distroversion": "v3.20", "reponame": "main", "packages": [{"pkg": {"name":
"openssl", "secfixes": {"3.1.4-r1": ["CVE-2023-5678", ...], "0": [...]}}}]}``: under each version
that fixed them, the ids of the issues it fixed. :func:`iter_secdb` yields one :class:`Advisory`
per id and file (``source`` "alpine-secdb"), with one entry per package in the OSV ecosystem
``Alpine:v3.20``:

* an id under version V: an ECOSYSTEM range introduced "0", fixed V. An id listed under
  versions of several upstream versions of one package (fixed in ``1.29.3-r10``, then again in
  ``1.30.1-r2`` after an upgrade that lacked the fix) is affected on each upstream version until
  its own fix (:func:`_events`);
* an id under "0": the package was never affected in this release, no entry.

An entry is the id, sometimes followed by more text: another id ("CVE-2016-6258 XSA-182",
"CVE-2019-5060 TALOS-2019-0844"), or a note ("CVE-2018-14468 (FrameRelay)"). Every id-shaped
token counts: the first CVE id names the advisory, the other ids become its aliases; an entry
with no CVE id is named by its first id ("XSA-207"), and one with no id at all
("CVE-????-?????") is reported as invalid. Alpine's secdb rates nothing: no severity.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from moorage.scanning.advisories.model import Advisory, Affected, EventKind, Range
from moorage.scanning.advisories.osv import InvalidAdvisory
from moorage.scanning.versions import Scheme, parse

SOURCE: Final = "alpine-secdb"
VULN_URL: Final = "https://security.alpinelinux.org/vuln/"

# An advisory id: a prefix, then numbers ("CVE-2019-5060", "XSA-182", "wnpa-sec-2017-18").
_ID = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*(?:-\d+)+")
_CVE = re.compile(r"CVE-\d{4}-\d{4,}")

OnInvalid = Callable[[str, InvalidAdvisory], None]


def is_secdb(document: Mapping[str, object]) -> bool:
    return "packages" in document and "distroversion" in document


@dataclass
class _Entry:
    """What one file says about one id: its aliases, and per package the fixing versions."""

    aliases: list[str] = field(default_factory=list)
    fixed: dict[str, list[str]] = field(default_factory=dict)


def iter_secdb(
    document: Mapping[str, object], *, source: str = SOURCE, on_invalid: OnInvalid | None = None
) -> Iterator[Advisory]:
    """Yield one advisory per id in a secdb document, in the order ids first appear.

    A document without ``distroversion`` or ``packages`` raises :class:`InvalidAdvisory`. An
    unusable package or entry raises it too, or, given ``on_invalid``, is passed to it with
    where it is (``package@version``) and skipped.
    """
    release = document.get("distroversion")
    packages = document.get("packages")
    if not isinstance(release, str) or not release:
        raise InvalidAdvisory("'distroversion' is missing or not a string")
    if packages is None:  # an empty repository (v3.3/community) has "packages:" and nothing
        packages = []
    if not isinstance(packages, list):
        raise InvalidAdvisory("'packages' is not a list")
    entries: dict[str, _Entry] = {}
    for index, item in enumerate(packages):
        try:
            name, secfixes = _package(item)
        except InvalidAdvisory as error:
            _invalid(on_invalid, f"packages[{index}]", error)
            continue
        for version, ids in secfixes.items():
            for text in ids:
                try:
                    advisory_id, aliases = _ids(text)
                except InvalidAdvisory as error:
                    _invalid(on_invalid, f"{name}@{version}", error)
                    continue
                entry = entries.setdefault(advisory_id, _Entry())
                entry.aliases.extend(a for a in aliases if a not in entry.aliases)
                if version != "0":
                    versions = entry.fixed.setdefault(name, [])
                    if version not in versions:
                        versions.append(version)
    ecosystem = f"Alpine:{release}"
    repository = document.get("reponame")
    scope = f"{release}/{repository}" if isinstance(repository, str) and repository else release
    for advisory_id, entry in entries.items():
        if entry.fixed:
            yield _advisory(advisory_id, entry, ecosystem, scope, source)


def _invalid(on_invalid: OnInvalid | None, where: str, error: InvalidAdvisory) -> None:
    if on_invalid is None:
        raise InvalidAdvisory(f"{where}: {error}")
    on_invalid(where, error)


def _package(item: object) -> tuple[str, Mapping[str, list[str]]]:
    pkg = item.get("pkg") if isinstance(item, Mapping) else None
    if not isinstance(pkg, Mapping):
        raise InvalidAdvisory("not a mapping with a 'pkg' mapping")
    name = pkg.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidAdvisory("'pkg.name' is missing or not a string")
    secfixes = pkg.get("secfixes") or {}
    if not isinstance(secfixes, Mapping):
        raise InvalidAdvisory(f"{name}: 'secfixes' is not a mapping")
    checked: dict[str, list[str]] = {}
    for version, ids in secfixes.items():
        # YAML may read an unquoted version such as 1.0 as a number; secdb versions are strings.
        if not isinstance(version, str):
            raise InvalidAdvisory(f"{name}: version {version!r} is not a string")
        ids = ids or []  # "7.4.0-r0:" with no list under it (heimdal in v3.6)
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise InvalidAdvisory(f"{name}@{version}: the fixed ids are not a list of strings")
        checked[version] = ids
    return name, checked


def _ids(text: str) -> tuple[str, list[str]]:
    """The advisory id an entry names, and its other ids."""
    ids = [token for token in text.split() if _ID.fullmatch(token)]
    if not ids:
        raise InvalidAdvisory(f"no advisory id in {text!r}")
    main = next((i for i in ids if _CVE.fullmatch(i)), ids[0])
    return main, [i for i in ids if i != main]


def _advisory(advisory_id: str, entry: _Entry, ecosystem: str, scope: str, source: str) -> Advisory:
    """The advisory of ``advisory_id`` in one secdb file. Its id names the file's release and
    repository (``ALPINE-v3.20/main-CVE-2023-5678``): each file has its own advisory for the
    same CVE, and an archive of every release imports them all as one source, where an id is
    unique. The CVE (or other id) comes first in ``aliases``: findings are named by it."""
    affected = [
        Affected(
            ecosystem=ecosystem,
            package=package,
            ranges=(Range("ECOSYSTEM", _events(versions)),),
            versions=(),
            fixed=tuple(versions),
        )
        for package, versions in entry.fixed.items()
    ]
    return Advisory(
        id=f"ALPINE-{scope}-{advisory_id}",
        aliases=(advisory_id, *(a for a in entry.aliases if a != advisory_id)),
        summary="",
        details="",
        severity=None,
        cvss_v3_score=None,
        cvss_v3_vector=None,
        references=(VULN_URL + advisory_id,),
        published=None,
        modified=None,
        affected=tuple(affected),
        source=source,
    )


def _events(fixed: list[str]) -> tuple[tuple[EventKind, str], ...]:
    """The range of an id fixed in ``fixed``: affected before the first fix, and again on each
    later upstream version until its own fix.

    A branch lists one id under several versions when the fix was made in one upstream version
    (``1.29.3-r10``) and made again after an upgrade to a newer upstream version that lacked it
    (``1.30.1-r2``): ``1.30.1-r1`` is affected, ``1.29.3-r11`` is not. The newer span starts just
    after every revision of the older upstream version, at a revision no package reaches.
    Versions that do not parse keep the file's order, each closing the span.
    """
    ordered = _sorted_alpine(fixed)
    events: list[tuple[EventKind, str]] = [("introduced", "0"), ("fixed", ordered[0])]
    for previous, version in itertools.pairwise(ordered):
        upstream = _upstream(previous)
        if upstream is None or upstream == _upstream(version):
            continue  # fixed again in a later revision of the same upstream version
        events += [("introduced", f"{upstream}-r{_AFTER_EVERY_REVISION}"), ("fixed", version)]
    return tuple(events)


_AFTER_EVERY_REVISION = 2**32 - 1
_REVISION = re.compile(r"^(.+)-r\d+$")


def _upstream(version: str) -> str | None:
    match = _REVISION.match(version)
    return match[1] if match else None


def _sorted_alpine(versions: list[str]) -> list[str]:
    parsed: dict[str, Any] = {v: parse(Scheme.ALPINE, v) for v in versions}
    if any(p is None for p in parsed.values()):
        return list(versions)

    def compare(left: str, right: str) -> int:
        # Only "<": univers compares Alpine versions' ">=" as text (scanning/versions.py).
        return -1 if parsed[left] < parsed[right] else (1 if parsed[right] < parsed[left] else 0)

    return sorted(versions, key=functools.cmp_to_key(compare))
