"""Parse the Debian Security Tracker's JSON export (https://security-tracker.debian.org/tracker/data/json).

The export is one document, ``{source package: {CVE or TEMP id: issue}}``, where an issue holds
``description``, ``scope``, ``debianbug`` and ``releases``: ``{codename: {"status",
"repositories", "fixed_version", "urgency", "nodsa", ...}}``. :func:`iter_debian_tracker` turns it
into one :class:`Advisory` per id (an id shared by several source packages gives one advisory with
an entry per package and release), ``source`` "debian-security-tracker".

Per release, named as OSV names Debian releases (buster ``Debian:10`` ... forky ``Debian:14``;
other codenames, sid among them, are skipped):

* ``resolved`` with ``fixed_version`` "0": the release was never affected, no entry;
* ``resolved`` with a version V: an ECOSYSTEM range introduced "0", fixed V;
* ``open``: an ECOSYSTEM range introduced "0" with no fix (unfixed);
* ``undetermined``: skipped, the tracker does not know yet.

An id with no entry left is not yielded. TEMP ids (issues without a CVE yet) are kept: they are
real, often unfixed, issues and their tracker page exists.

``Affected.severity`` comes from the release's ``urgency``, the rating ECR reports for
distribution packages. A trailing ``*`` or ``**`` (the tracker's mark for an urgency taken from
elsewhere) is dropped, then: ``unimportant`` -> INFORMATIONAL (Debian rates it below low),
``low`` -> LOW, ``medium`` -> MEDIUM, ``high`` -> HIGH; anything else (``not yet assigned``,
``end-of-life``, which says the release is unsupported, not how bad the issue is) -> no rating.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Final

from moorage.scanning.advisories.model import Advisory, Affected, EventKind, Range
from moorage.scanning.advisories.osv import InvalidAdvisory

SOURCE: Final = "debian-security-tracker"
TRACKER_URL: Final = "https://security-tracker.debian.org/tracker/"

RELEASES: Final[Mapping[str, str]] = {
    "buster": "Debian:10",
    "bullseye": "Debian:11",
    "bookworm": "Debian:12",
    "trixie": "Debian:13",
    "forky": "Debian:14",
}

_URGENCIES: Final[Mapping[str, str]] = {
    "unimportant": "INFORMATIONAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
}

OnInvalid = Callable[[str, InvalidAdvisory], None]


def is_debian_tracker(document: Mapping[str, object]) -> bool:
    """Whether ``document`` looks like the tracker's export: its first package maps ids to issues
    with ``releases`` (only the first is looked at; the export has tens of thousands)."""
    for issues in document.values():
        if not isinstance(issues, Mapping):
            return False
        for issue in issues.values():
            return isinstance(issue, Mapping) and "releases" in issue
        return False
    return False


def iter_debian_tracker(
    document: Mapping[str, object], *, source: str = SOURCE, on_invalid: OnInvalid | None = None
) -> Iterator[Advisory]:
    """Yield one advisory per id in the tracker export, in the order ids first appear.

    An unusable package or issue raises :class:`InvalidAdvisory`, or, given ``on_invalid``, is
    passed to it with where it is (``package/id``) and skipped, so one bad entry does not cost
    the other hundred thousand.
    """
    # An id can appear under several source packages (a library and the packages embedding it):
    # index them first, so each advisory is built whole; the index only holds references.
    by_id: dict[str, list[tuple[str, Mapping[str, object]]]] = {}
    for package, issues in document.items():
        if not isinstance(issues, Mapping):
            _invalid(on_invalid, package, InvalidAdvisory("a package's issues are not a mapping"))
            continue
        for issue_id, issue in issues.items():
            if not isinstance(issue, Mapping):
                _invalid(on_invalid, f"{package}/{issue_id}", InvalidAdvisory("not a mapping"))
                continue
            by_id.setdefault(issue_id, []).append((package, issue))
    for issue_id, entries in by_id.items():
        try:
            advisory = _advisory(issue_id, entries, source)
        except InvalidAdvisory as error:
            _invalid(on_invalid, f"{entries[0][0]}/{issue_id}", error)
            continue
        if advisory is not None:
            yield advisory


def _invalid(on_invalid: OnInvalid | None, where: str, error: InvalidAdvisory) -> None:
    if on_invalid is None:
        raise InvalidAdvisory(f"{where}: {error}")
    on_invalid(where, error)


def _advisory(
    issue_id: str, entries: list[tuple[str, Mapping[str, object]]], source: str
) -> Advisory | None:
    affected = tuple(
        entry for package, issue in entries for entry in _affected(package, issue_id, issue)
    )
    if not affected:
        return None
    references = [TRACKER_URL + issue_id]
    description = ""
    for package, issue in entries:
        text = issue.get("description")
        if text is not None and not isinstance(text, str):
            raise InvalidAdvisory(f"{package}/{issue_id}: 'description' is not a string")
        description = description or text or ""
        bug = issue.get("debianbug")
        if isinstance(bug, int) and f"https://bugs.debian.org/{bug}" not in references:
            references.append(f"https://bugs.debian.org/{bug}")
    return Advisory(
        id=issue_id,
        aliases=(),
        summary="",
        details=description,
        severity=None,  # Debian rates each release separately: see Affected.severity
        cvss_v3_score=None,
        cvss_v3_vector=None,
        references=tuple(references),
        published=None,
        modified=None,
        affected=affected,
        source=source,
    )


def _affected(package: str, issue_id: str, issue: Mapping[str, object]) -> Iterator[Affected]:
    releases = issue.get("releases")
    if releases == []:  # how the export writes "no release tracked" for some issues
        return
    if not isinstance(releases, Mapping):
        raise InvalidAdvisory(f"{package}/{issue_id}: 'releases' is not a mapping")
    for codename, release in releases.items():
        ecosystem = RELEASES.get(codename)
        if ecosystem is None:
            continue
        where = f"{package}/{issue_id}: release {codename}"
        if not isinstance(release, Mapping):
            raise InvalidAdvisory(f"{where} is not a mapping")
        status = release.get("status")
        if status == "undetermined":
            continue
        if status == "open":
            fixed: tuple[str, ...] = ()
        elif status == "resolved":
            version = release.get("fixed_version")
            if not isinstance(version, str) or not version:
                raise InvalidAdvisory(f"{where} is resolved without a fixed_version")
            if version == "0":
                continue  # never affected
            fixed = (version,)
        else:
            raise InvalidAdvisory(f"{where} has an unknown status {status!r}")
        events: tuple[tuple[EventKind, str], ...] = (
            ("introduced", "0"),
            *(("fixed", version) for version in fixed),
        )
        yield Affected(
            ecosystem=ecosystem,
            package=package,
            ranges=(Range("ECOSYSTEM", events),),
            versions=(),
            fixed=fixed,
            severity=urgency_severity(release.get("urgency")),
        )


def urgency_severity(urgency: object) -> str | None:
    """The severity word for a tracker urgency (see the module docstring), or ``None``."""
    if not isinstance(urgency, str):
        return None
    return _URGENCIES.get(urgency.rstrip("*").strip())
