"""Parse OSV documents (https://ossf.github.io/osv-schema/) into :class:`Advisory` records.

The YAML form of a record (PyPA's advisory database) is the same document: load it with
``yaml.safe_load`` and pass the mapping here.

Severity, as a word (CRITICAL, HIGH, MEDIUM, LOW, NONE), comes from the database's own rating when
the record gives one (``database_specific.severity``, else the first
``affected[].ecosystem_specific.severity``); GitHub's MODERATE is read as MEDIUM. Otherwise it comes
from the CVSS v3 base score of the first ``CVSS_V3`` vector in ``severity[]``, computed with the
``cvss`` package. A vector that package rejects is kept, with no score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import cast

from cvss import CVSS3  # type: ignore[import-untyped]
from cvss.exceptions import CVSS3MalformedError  # type: ignore[import-untyped]

from moorage.scanning.advisories.model import (
    EVENT_KINDS,
    Advisory,
    Affected,
    EventKind,
    Range,
    RangeType,
)

_RANGE_TYPES: tuple[RangeType, ...] = ("ECOSYSTEM", "SEMVER", "GIT")
_SEVERITY_WORDS = {"MODERATE": "MEDIUM"}


class InvalidAdvisory(ValueError):
    """The document is not a usable OSV record; the message says which field is wrong."""


def parse_osv(document: Mapping[str, object], *, source: str = "") -> Advisory:
    """Build an :class:`Advisory` from one OSV document; :class:`InvalidAdvisory` if unusable."""
    if not isinstance(document, Mapping):
        raise InvalidAdvisory("an OSV record is a mapping")
    advisory_id = document.get("id")
    if not isinstance(advisory_id, str) or not advisory_id:
        raise InvalidAdvisory("'id' is missing or not a string")
    affected = tuple(_affected(entry, i) for i, entry in enumerate(_list(document, "affected")))
    vector = _cvss_v3_vector(document)
    score, score_severity = _cvss_v3(vector)
    severity = _rated_severity(document) or score_severity
    return Advisory(
        id=advisory_id,
        aliases=tuple(_strings(document, "aliases")),
        summary=_text(document, "summary"),
        details=_text(document, "details"),
        severity=severity,
        cvss_v3_score=score,
        cvss_v3_vector=vector,
        references=tuple(
            url
            for ref in _list(document, "references")
            if isinstance(ref, Mapping) and isinstance(url := ref.get("url"), str)
        ),
        published=_timestamp(document, "published"),
        modified=_timestamp(document, "modified"),
        affected=affected,
        source=source,
    )


def _list(document: Mapping[str, object], key: str) -> Sequence[object]:
    value = document.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidAdvisory(f"'{key}' is not a list")
    return value


def _strings(document: Mapping[str, object], key: str) -> list[str]:
    values = _list(document, key)
    if not all(isinstance(value, str) for value in values):
        raise InvalidAdvisory(f"'{key}' holds something other than strings")
    return cast(list[str], values)


def _text(document: Mapping[str, object], key: str) -> str:
    value = document.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidAdvisory(f"'{key}' is not a string")
    return value


def _timestamp(document: Mapping[str, object], key: str) -> datetime | None:
    """An RFC 3339 time (YAML may already have made it a datetime); Go's zero time means unknown."""
    value = document.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidAdvisory(f"'{key}' is not an RFC 3339 time: {value!r}") from None
    if not isinstance(value, datetime):
        raise InvalidAdvisory(f"'{key}' is not a time")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return None if value.year == 1 else value


def _affected(entry: object, index: int) -> Affected:
    where = f"affected[{index}]"
    if not isinstance(entry, Mapping):
        raise InvalidAdvisory(f"{where} is not a mapping")
    package = entry.get("package") or {}
    if not isinstance(package, Mapping):
        raise InvalidAdvisory(f"{where}.package is not a mapping")
    ecosystem, name = package.get("ecosystem", ""), package.get("name", "")
    if not isinstance(ecosystem, str) or not isinstance(name, str):
        raise InvalidAdvisory(f"{where}.package has a non-string ecosystem or name")
    ranges = tuple(_range(r, f"{where}.ranges[{i}]") for i, r in enumerate(_list(entry, "ranges")))
    return Affected(
        ecosystem=ecosystem,
        package=name,
        ranges=ranges,
        versions=tuple(_strings(entry, "versions")),
        fixed=tuple(
            version
            for r in ranges
            if r.type != "GIT"
            for kind, version in r.events
            if kind == "fixed"
        ),
    )


def _range(value: object, where: str) -> Range:
    if not isinstance(value, Mapping):
        raise InvalidAdvisory(f"{where} is not a mapping")
    range_type = value.get("type")
    if range_type not in _RANGE_TYPES:
        raise InvalidAdvisory(f"{where}.type is not one of {', '.join(_RANGE_TYPES)}")
    events: list[tuple[EventKind, str]] = []
    for event in _list(value, "events"):
        if not isinstance(event, Mapping) or len(event) != 1:
            raise InvalidAdvisory(f"{where} has an event that is not a single-key mapping")
        ((kind, version),) = event.items()
        if kind not in EVENT_KINDS or not isinstance(version, str):
            raise InvalidAdvisory(f"{where} has an unknown event or a non-string version: {event}")
        events.append((cast(EventKind, kind), version))
    return Range(type=cast(RangeType, range_type), events=tuple(events))


def _rated_severity(document: Mapping[str, object]) -> str | None:
    candidates: list[object] = []
    database_specific = document.get("database_specific")
    if isinstance(database_specific, Mapping):
        candidates.append(database_specific.get("severity"))
    for entry in _list(document, "affected"):
        specific = entry.get("ecosystem_specific") if isinstance(entry, Mapping) else None
        if isinstance(specific, Mapping):
            candidates.append(specific.get("severity"))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            word = candidate.strip().upper()
            return _SEVERITY_WORDS.get(word, word)
    return None


def _cvss_v3_vector(document: Mapping[str, object]) -> str | None:
    for entry in _list(document, "severity"):
        if isinstance(entry, Mapping) and entry.get("type") == "CVSS_V3":
            score = entry.get("score")
            if isinstance(score, str) and score:
                return score
    return None


def _cvss_v3(vector: str | None) -> tuple[float | None, str | None]:
    """The base score of a CVSS v3 vector and its rating, or ``(None, None)``."""
    if vector is None:
        return None, None
    try:
        cvss = CVSS3(vector)
    except CVSS3MalformedError:
        return None, None
    return float(cvss.scores()[0]), str(cvss.severities()[0]).upper()
