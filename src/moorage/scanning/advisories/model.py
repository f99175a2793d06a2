"""Advisory records, shaped after the OSV schema (https://ossf.github.io/osv-schema/).

Only what matching and reporting need is kept: which package versions are affected (ranges of
``introduced``/``fixed``/``last_affected``/``limit`` events, or explicit versions), and how bad and
where to read more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

RangeType = Literal["ECOSYSTEM", "SEMVER", "GIT"]
EventKind = Literal["introduced", "fixed", "last_affected", "limit"]
EVENT_KINDS: tuple[EventKind, ...] = ("introduced", "fixed", "last_affected", "limit")


@dataclass(frozen=True, slots=True)
class Range:
    """An OSV range: events in the order the record gives them, as ``(kind, version)`` pairs."""

    type: RangeType
    events: tuple[tuple[EventKind, str], ...]


@dataclass(frozen=True, slots=True)
class Affected:
    """One affected package.

    ``ecosystem`` and ``package`` are empty when the record names none (PSF advisories about
    CPython give only GIT ranges). ``fixed`` lists the ``fixed`` versions of the ECOSYSTEM and
    SEMVER ranges, which are versions a user can upgrade to; GIT commits are left in ``ranges``.
    ``severity`` is the vendor's rating for this package alone (OSV's ``affected[].severity``; a
    distribution's urgency for its release), which takes precedence over the advisory's.
    """

    ecosystem: str
    package: str
    ranges: tuple[Range, ...]
    versions: tuple[str, ...]
    fixed: tuple[str, ...]
    severity: str | None = None


@dataclass(frozen=True, slots=True)
class Advisory:
    """One vulnerability record from an advisory database (``source`` says which, or which file)."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    details: str
    severity: str | None
    cvss_v3_score: float | None
    cvss_v3_vector: str | None
    references: tuple[str, ...]
    published: datetime | None
    modified: datetime | None
    affected: tuple[Affected, ...]
    source: str
