"""Parse the Node.js security working group's npm advisories (``vuln/npm/<n>.json`` in
https://github.com/nodejs/security-wg).

A record names one npm package (``module_name``) and its affected versions as a node-semver range
(``vulnerable_versions``, e.g. ">=1.2.0 <1.2.3 || >=2.0.0 <2.0.1"). :func:`parse_nodejs` gives one
:class:`Advisory` with id ``NSWG-ECO-<n>`` (the working group's own name, which OSV and GHSA
also use), the record's CVEs as aliases, and one ``npm`` entry:

* each ``||`` alternative becomes one SEMVER range: ``>=a`` -> introduced a (``0`` without a
  lower bound), ``<b`` -> fixed b, ``<=b`` -> last_affected b; ``>a`` -> introduced at the
  smallest SemVer version above a (``a.b.(c+1)-0``, or ``<a>.0`` for a prerelease a), since OSV
  has no exclusive lower bound; ``*`` -> introduced 0;
* an exact version (``1.0.0``, ``=3.10.2``) goes to ``versions``;
* a partial version is an x-range, as node-semver reads it: ``>=1.2`` is ``>=1.2.0``, ``<=1.2``
  is ``<1.3.0``, ``1.2.x`` is ``>=1.2.0 <1.3.0``;
* ``~``, ``^`` and hyphen ranges are first written as the comparators node-semver reads them
  as: ``~1.2.3`` is ``>=1.2.3 <1.3.0-0``, ``^0.2.3`` is ``>=0.2.3 <0.3.0-0``, ``1.2 - 2.3.4`` is
  ``>=1.2.0 <=2.3.4`` (:func:`desugar`);
* two lower (or upper) bounds in one alternative are not translated: :class:`InvalidAdvisory`
  says which part.

``fixed`` on the entry lists the versions to upgrade to: the lower bound of each
``patched_versions`` alternative (``>=1.5.2`` -> 1.5.2, also for ``^``/``~``), not the ranges'
``fixed`` events, because the working group writes ``<=99.999.99999`` / ``<0.0.0`` for "no fix".

Severity is the record's ``cvss_score`` in NVD's bands; ``cvss_vector`` is kept as given.

``vuln/core/*.json`` and ``vuln/deps/*.json`` are advisories about the Node.js runtime and the
libraries it bundles, not npm packages: :func:`is_nodejs_runtime` recognises them so that
:mod:`~moorage.scanning.advisories.sources` skips them (they have no ``module_name``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from moorage.domain.findings import severity_from_cvss
from moorage.scanning.advisories.model import Advisory, Affected, EventKind, Range
from moorage.scanning.advisories.osv import InvalidAdvisory

ECOSYSTEM: Final = "npm"
SOURCE: Final = "nodejs-security-wg"

Event = tuple[EventKind, str]

_COMPARATOR = re.compile(r"(<=|>=|<|>|=)?\s*(\S+)")
_PART = r"(\d+|[xX*])"
_VERSION = re.compile(
    rf"v?{_PART}(?:\.{_PART})?(?:\.{_PART})?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?"
)


def is_nodejs(document: Mapping[str, object]) -> bool:
    return "module_name" in document


def is_nodejs_runtime(document: Mapping[str, object]) -> bool:
    """A ``vuln/core`` or ``vuln/deps`` record (they name CVEs under ``cve``, no module), or an
    ``index.json``, which repeats its folder's records under their numbers."""
    if "cve" in document and "module_name" not in document:
        return True
    return bool(document) and all(
        key.isdigit() and isinstance(value, Mapping) for key, value in document.items()
    )


def parse_nodejs(document: Mapping[str, object], *, source: str = SOURCE) -> Advisory:
    """Build an :class:`Advisory` from one npm record; :class:`InvalidAdvisory` if unusable."""
    number = document.get("id")
    if not isinstance(number, int) or isinstance(number, bool):
        raise InvalidAdvisory("'id' is missing or not a number")
    module = _text(document, "module_name")
    if not module:
        raise InvalidAdvisory("'module_name' is missing")
    vulnerable = document.get("vulnerable_versions")
    if not isinstance(vulnerable, str) or not vulnerable.strip():
        raise InvalidAdvisory("'vulnerable_versions' is missing or not a string")
    ranges, versions = semver_events(vulnerable)
    patched = document.get("patched_versions")
    if patched is not None and not isinstance(patched, str):
        raise InvalidAdvisory("'patched_versions' is not a string")
    score = document.get("cvss_score")
    if score is not None and (not isinstance(score, int | float) or isinstance(score, bool)):
        raise InvalidAdvisory("'cvss_score' is not a number")
    return Advisory(
        id=f"NSWG-ECO-{number}",
        aliases=_strings(document, "cves"),
        summary=_text(document, "title"),
        details=_text(document, "overview"),
        severity=None if score is None else severity_from_cvss(float(score)).value,
        cvss_v3_score=None if score is None else float(score),
        cvss_v3_vector=_text(document, "cvss_vector") or None,
        references=_strings(document, "references"),
        published=_date(document, "publish_date"),
        modified=_date(document, "updated_at"),
        affected=(
            Affected(
                ecosystem=ECOSYSTEM,
                package=module,
                ranges=tuple(Range("SEMVER", events) for events in ranges),
                versions=versions,
                fixed=patched_lower_bounds(patched or ""),
            ),
        ),
        source=source,
    )


def semver_events(expression: str) -> tuple[tuple[tuple[Event, ...], ...], tuple[str, ...]]:
    """The OSV events of each ``||`` alternative of a node-semver range, and its exact versions.

    Raises :class:`InvalidAdvisory` for what cannot be written as events (see the module
    docstring).
    """
    ranges: list[tuple[Event, ...]] = []
    versions: list[str] = []
    for alternative in expression.split("||"):
        lower: Event | None = None
        upper: Event | None = None
        exact: str | None = None
        comparators = _comparators(desugar(alternative, expression), expression)
        if any(text == "-" for _, text in comparators):
            raise InvalidAdvisory(f"{expression!r}: {alternative.strip()!r} is not a range")
        for operator, text in comparators:
            if text in ("*", "x", "X") and operator in ("", "=", ">="):
                lower = lower or ("introduced", "0")
                continue
            parts, prerelease = _version(text, expression)
            if len(parts) == 3 and operator in ("", "="):
                if len(comparators) > 1:
                    raise InvalidAdvisory(
                        f"{expression!r}: exact version {text!r} is combined with other bounds"
                    )
                exact = ".".join(parts) + (f"-{prerelease}" if prerelease else "")
                continue
            new_lower, new_upper = _bounds(operator, parts, prerelease)
            if (new_lower and lower) or (new_upper and upper):
                raise InvalidAdvisory(
                    f"{expression!r}: {alternative.strip()!r} has two lower or two upper bounds"
                )
            lower, upper = lower or new_lower, upper or new_upper
        if exact is not None:
            versions.append(exact)
            continue
        events: list[Event] = [lower or ("introduced", "0")]
        if upper is not None:
            events.append(upper)
        ranges.append(tuple(events))
    return tuple(ranges), tuple(versions)


_HYPHEN = re.compile(r"^\s*(\S+)\s+-\s+(\S+)\s*$")
_SUGAR = re.compile(r"([~^])\s*(\S+)")


def desugar(alternative: str, expression: str) -> str:
    """One ``||`` alternative with its hyphen range, ``~`` and ``^`` comparators written as
    plain ones, as node-semver defines them (its README, "Advanced Range Syntax")."""
    hyphen = _HYPHEN.match(alternative)
    if hyphen is not None:
        return f">={hyphen[1]} <={hyphen[2]}"
    return _SUGAR.sub(lambda m: _desugared(m[1], m[2], expression), alternative)


def _desugared(operator: str, text: str, expression: str) -> str:
    parts, prerelease = _version(text, expression)
    if not parts:  # "~*", "^x": any version
        return "*"
    major = int(parts[0])
    low = ".".join(parts + ["0"] * (3 - len(parts))) + (f"-{prerelease}" if prerelease else "")
    if operator == "~":
        # ~1.2.3 and ~1.2 allow patch updates, ~1 minor ones.
        high = f"{major + 1}.0.0" if len(parts) == 1 else f"{major}.{int(parts[1]) + 1}.0"
    elif major > 0 or len(parts) == 1:
        high = f"{major + 1}.0.0"  # ^1.2.3, ^1, ^0: below the next major version
    elif len(parts) == 2 or int(parts[1]) > 0:
        high = f"0.{int(parts[1]) + 1}.0"  # ^0.2.3, ^0.2, ^0.0: below the next minor
    else:
        high = f"0.0.{int(parts[2]) + 1}"  # ^0.0.3: that patch version alone
    return f">={low} <{high}-0"


def patched_lower_bounds(expression: str) -> tuple[str, ...]:
    """The first version of each ``||`` alternative of ``patched_versions`` that has one
    (``>=v``, ``=v``, ``v``, ``^v``, ``~v`` with a full version ``v``)."""
    found: list[str] = []
    for alternative in expression.split("||"):
        match = re.match(r"\s*(>=|=|\^|~)?\s*v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)", alternative)
        if match and match.group(2) not in found:
            found.append(match.group(2))
    return tuple(found)


def _comparators(alternative: str, expression: str) -> list[tuple[str, str]]:
    text = alternative.strip()
    if not text:
        raise InvalidAdvisory(f"{expression!r} has an empty alternative")
    comparators: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _COMPARATOR.match(text, position)
        if match is None or match.group(2).startswith(("<", ">", "=")):
            raise InvalidAdvisory(f"{expression!r}: cannot read {text[position:]!r}")
        comparators.append((match.group(1) or "", match.group(2)))
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1
    return comparators


def _version(text: str, expression: str) -> tuple[list[str], str]:
    """The numeric parts given before any wildcard, and the prerelease (full versions only)."""
    match = _VERSION.fullmatch(text)
    if match is None:
        raise InvalidAdvisory(
            f"{expression!r}: {text!r} is not a version or a <, <=, >, >=, =, ~, ^ comparator"
        )
    parts: list[str] = []
    for part in match.group(1, 2, 3):
        if part is None or not part.isdigit():
            break
        parts.append(str(int(part)))
    prerelease = match.group(4) or ""
    if prerelease and len(parts) < 3:
        raise InvalidAdvisory(f"{expression!r}: {text!r} has a prerelease but no patch version")
    return parts, prerelease


def _bounds(operator: str, parts: list[str], prerelease: str) -> tuple[Event | None, Event | None]:
    """The lower and upper event of one comparator; ``parts`` has fewer than three numbers for
    an x-range (``=``/bare full versions are exact and handled by the caller)."""
    if len(parts) == 3:
        version = ".".join(parts) + (f"-{prerelease}" if prerelease else "")
        if operator == ">=":
            return ("introduced", version), None
        if operator == ">":
            if prerelease:
                return ("introduced", f"{version}.0"), None
            return ("introduced", f"{parts[0]}.{parts[1]}.{int(parts[2]) + 1}-0"), None
        if operator == "<":
            return None, ("fixed", version)
        return None, ("last_affected", version)  # "<="
    if not parts:  # "<x" matches nothing, ">x" nothing either: neither is worth a record
        raise InvalidAdvisory(f"a wildcard after {operator!r} matches no version")
    low = ".".join(parts + ["0"] * (3 - len(parts)))
    bumped = [*parts[:-1], str(int(parts[-1]) + 1)]
    high = ".".join(bumped + ["0"] * (3 - len(bumped)))
    if operator == ">=":
        return ("introduced", low), None
    if operator == ">":
        return ("introduced", high), None
    if operator == "<":
        return None, ("fixed", low)
    if operator == "<=":
        return None, ("fixed", high)
    return ("introduced", low), ("fixed", high)  # "1.2", "=1.2", "1.2.x"


def _text(document: Mapping[str, object], key: str) -> str:
    value = document.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidAdvisory(f"'{key}' is not a string")
    return value


def _strings(document: Mapping[str, object], key: str) -> tuple[str, ...]:
    value = document.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidAdvisory(f"'{key}' is not a list of strings")
    return tuple(value)


def _date(document: Mapping[str, object], key: str) -> datetime | None:
    """The records give days ("2015-10-17"), some a full time; read as UTC."""
    text = _text(document, key)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidAdvisory(f"'{key}' is not a date: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
