"""A compact JSON form of :class:`Advisory`, as the advisory database stores it.

:func:`encode` and :func:`decode` round-trip every field exactly. The form is a JSON object with
short keys; empty and None fields are left out, and range events are ``[kind letter, version]``
pairs. It carries a format version (``"v"``) so that a later format can still read this one.

::

    {"v": 1, "id": ..., "al": [aliases], "su": summary, "de": details, "sv": severity,
     "cs": cvss v3 score, "cv": cvss v3 vector, "rf": [references], "pu": published,
     "mo": modified (ISO 8601), "so": source,
     "af": [{"e": ecosystem, "p": package, "r": [{"t": type, "ev": [["i", "1.0"], ...]}],
             "vs": [versions], "fx": [fixed], "sv": severity}]}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from moorage.scanning.advisories.model import Advisory, Affected, EventKind, Range, RangeType

FORMAT_VERSION = 1

_EVENT_LETTERS: dict[EventKind, str] = {
    "introduced": "i",
    "fixed": "f",
    "last_affected": "l",
    "limit": "x",
}
_LETTER_EVENTS: dict[str, EventKind] = {letter: kind for kind, letter in _EVENT_LETTERS.items()}


class UnreadableAdvisory(ValueError):
    """The stored text is not an advisory in a format this version reads."""


def encode(advisory: Advisory) -> str:
    """The advisory as compact JSON text (no spaces, non-ASCII kept as is)."""
    document: dict[str, Any] = {"v": FORMAT_VERSION, "id": advisory.id}
    _put(document, "al", list(advisory.aliases))
    _put(document, "su", advisory.summary)
    _put(document, "de", advisory.details)
    _put(document, "sv", advisory.severity)
    _put(document, "cs", advisory.cvss_v3_score)
    _put(document, "cv", advisory.cvss_v3_vector)
    _put(document, "rf", list(advisory.references))
    _put(document, "pu", _time(advisory.published))
    _put(document, "mo", _time(advisory.modified))
    _put(document, "so", advisory.source)
    _put(document, "af", [_affected(entry) for entry in advisory.affected])
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def decode(text: str | bytes) -> Advisory:
    """The advisory :func:`encode` gave ``text`` for; UnreadableAdvisory when it is not one."""
    try:
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("v") != FORMAT_VERSION:
            raise UnreadableAdvisory(f"not an advisory of format {FORMAT_VERSION}")
        score = document.get("cs")
        return Advisory(
            id=document["id"],
            aliases=tuple(document.get("al", ())),
            summary=document.get("su", ""),
            details=document.get("de", ""),
            severity=document.get("sv"),
            cvss_v3_score=None if score is None else float(score),
            cvss_v3_vector=document.get("cv"),
            references=tuple(document.get("rf", ())),
            published=_parse_time(document.get("pu")),
            modified=_parse_time(document.get("mo")),
            affected=tuple(_read_affected(entry) for entry in document.get("af", ())),
            source=document.get("so", ""),
        )
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, UnreadableAdvisory):
            raise
        raise UnreadableAdvisory(f"{type(error).__name__}: {error}") from error


def _put(document: dict[str, Any], key: str, value: object) -> None:
    # Leaving out empty values keeps the common record (few aliases, no per-package severity)
    # small; decode restores the same defaults.
    if value is not None and value != "" and value != []:
        document[key] = value


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: object) -> datetime | None:
    return None if value is None else datetime.fromisoformat(cast(str, value))


def _affected(entry: Affected) -> dict[str, Any]:
    document: dict[str, Any] = {}
    _put(document, "e", entry.ecosystem)
    _put(document, "p", entry.package)
    _put(
        document,
        "r",
        [
            {"t": r.type, "ev": [[_EVENT_LETTERS[kind], version] for kind, version in r.events]}
            for r in entry.ranges
        ],
    )
    _put(document, "vs", list(entry.versions))
    _put(document, "fx", list(entry.fixed))
    _put(document, "sv", entry.severity)
    return document


def _read_affected(document: Mapping[str, Any]) -> Affected:
    return Affected(
        ecosystem=document.get("e", ""),
        package=document.get("p", ""),
        ranges=tuple(
            Range(
                type=cast(RangeType, r["t"]),
                events=tuple((_LETTER_EVENTS[letter], version) for letter, version in r["ev"]),
            )
            for r in document.get("r", ())
        ),
        versions=tuple(document.get("vs", ())),
        fixed=tuple(document.get("fx", ())),
        severity=document.get("sv"),
    )
