"""The registry scanning configuration, and what it means for one repository.

ECR's model (shared reference §6.1, §6.2)::

    RegistryScanningConfiguration  scanType BASIC (default) | ENHANCED, rules[0..2]
     └── ScanningRule              scanFrequency, repositoryFilters[0..100]
          └── RepositoryFilter     filter (1-255 chars of [a-z0-9._-/*]), filterType WILDCARD

Filter matching, exactly as the ECR user guide's table ("Filters to choose which repositories
are scanned"): a filter **without** ``*`` matches every name that contains it (``prod``
matches ``repo-prod-repo``); a filter **with** ``*`` matches the whole name, each ``*``
standing for any run of characters, ``/`` and the empty run included (``prod*repo`` matches
``prodrepo`` and ``prod-repo``, not ``repo-prod-repo``).

Which frequencies a scan type takes (API reference, RegistryScanningRule.scanFrequency:
"ENHANCED ... CONTINUOUS_SCAN and SCAN_ON_PUSH ... BASIC ... SCAN_ON_PUSH ... If scan on push
is not specified, then the MANUAL scan frequency is set by default"). AWS does not document
the error for another combination; ours is InvalidParameter naming the rule:

    BASIC     SCAN_ON_PUSH, MANUAL   (a MANUAL rule changes nothing: MANUAL is the default)
    ENHANCED  SCAN_ON_PUSH, CONTINUOUS_SCAN   (enhanced scanning has no manual scans)

What a repository gets (:func:`effective_scanning`; user guide, same page):

- BASIC: a matching SCAN_ON_PUSH rule, else the repository's own (deprecated) scanOnPush
  flag, gives SCAN_ON_PUSH; everything else is MANUAL;
- ENHANCED: a matching CONTINUOUS_SCAN rule wins over a matching SCAN_ON_PUSH rule; no rules
  at all means CONTINUOUS_SCAN everywhere; a repository no filter matches is not scanned.
  ScanFrequency has no "off", so BatchGetRepositoryScanningConfiguration reports it as
  MANUAL, scanOnPush false, no filters (our decision), and ``automatic`` is false. The
  repository's own scanOnPush flag is ignored (the registry configuration governs
  enhanced scanning).

A rule with no filters matches no repository. ``scan_on_push`` is true for SCAN_ON_PUSH and
CONTINUOUS_SCAN: continuous scanning scans an image when it is pushed too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from moorage.domain.errors import InvalidParameter
from moorage.domain.wildcards import star_matches

MAX_RULES = 2
MAX_FILTERS = 100
MAX_FILTER_LENGTH = 255
# ECR's model gives ScanningRepositoryFilterValue as ^[a-z0-9*](?:[._\-/a-z0-9*]?[a-z0-9*]+)*$,
# which backtracks exponentially (24 characters and a bad one take 20 s). This is the same
# language (no two separators in a row, first and last characters not separators) written
# so that every string splits one way only.
FILTER_PATTERN = re.compile(r"^[a-z0-9*]+(?:[._\-/][a-z0-9*]+)*$")


class ScanType(StrEnum):
    BASIC = "BASIC"
    ENHANCED = "ENHANCED"


class ScanFrequency(StrEnum):
    SCAN_ON_PUSH = "SCAN_ON_PUSH"
    CONTINUOUS_SCAN = "CONTINUOUS_SCAN"
    MANUAL = "MANUAL"


class FilterType(StrEnum):
    WILDCARD = "WILDCARD"


ALLOWED_FREQUENCIES: Mapping[ScanType, frozenset[ScanFrequency]] = {
    ScanType.BASIC: frozenset({ScanFrequency.SCAN_ON_PUSH, ScanFrequency.MANUAL}),
    ScanType.ENHANCED: frozenset({ScanFrequency.SCAN_ON_PUSH, ScanFrequency.CONTINUOUS_SCAN}),
}


@dataclass(frozen=True, slots=True)
class RepositoryFilter:
    filter: str
    filter_type: FilterType = FilterType.WILDCARD

    def matches(self, repository_name: str) -> bool:
        return filter_matches(self.filter, repository_name)


@dataclass(frozen=True, slots=True)
class ScanningRule:
    scan_frequency: ScanFrequency
    repository_filters: tuple[RepositoryFilter, ...] = ()

    def matching_filters(self, repository_name: str) -> tuple[RepositoryFilter, ...]:
        return tuple(f for f in self.repository_filters if f.matches(repository_name))


@dataclass(frozen=True, slots=True)
class RegistryScanningConfiguration:
    """A registry's configuration; the default one (never put) is BASIC without rules."""

    scan_type: ScanType = ScanType.BASIC
    rules: tuple[ScanningRule, ...] = ()


DEFAULT_CONFIGURATION = RegistryScanningConfiguration()


@dataclass(frozen=True, slots=True)
class RepositoryScanning:
    """How one repository's images are scanned (ECR's RepositoryScanningConfiguration,
    without the repository's name and ARN).

    ``automatic`` is false only for a repository ENHANCED scanning leaves out; the scanner
    scans on push when ``scan_on_push``, and takes manual scans (StartImageScan) only when
    ``manual_scans``.
    """

    scan_type: ScanType
    scan_frequency: ScanFrequency
    scan_on_push: bool
    applied_filters: tuple[RepositoryFilter, ...] = ()
    automatic: bool = True

    @property
    def manual_scans(self) -> bool:
        return self.scan_type is ScanType.BASIC

    @property
    def continuous(self) -> bool:
        return self.scan_frequency is ScanFrequency.CONTINUOUS_SCAN


# -- matching ------------------------------------------------------------------------------


def filter_matches(filter_value: str, repository_name: str) -> bool:
    """Whether a WILDCARD filter matches a repository name (module docstring)."""
    if "*" not in filter_value:
        return filter_value in repository_name
    return star_matches(filter_value, repository_name)


def effective_scanning(
    config: RegistryScanningConfiguration, repository_name: str, repository_scan_on_push: bool
) -> RepositoryScanning:
    """How the repository's images are scanned under ``config`` (module docstring)."""
    matched: dict[ScanFrequency, tuple[RepositoryFilter, ...]] = {}
    for rule in config.rules:
        filters = rule.matching_filters(repository_name)
        if filters:
            matched[rule.scan_frequency] = matched.get(rule.scan_frequency, ()) + filters
    if config.scan_type is ScanType.ENHANCED:
        return _enhanced(config, matched)
    return _basic(matched, repository_scan_on_push)


def _basic(
    matched: Mapping[ScanFrequency, tuple[RepositoryFilter, ...]], repository_scan_on_push: bool
) -> RepositoryScanning:
    if ScanFrequency.SCAN_ON_PUSH in matched:
        return RepositoryScanning(
            ScanType.BASIC, ScanFrequency.SCAN_ON_PUSH, True, matched[ScanFrequency.SCAN_ON_PUSH]
        )
    if repository_scan_on_push:
        return RepositoryScanning(ScanType.BASIC, ScanFrequency.SCAN_ON_PUSH, True)
    return RepositoryScanning(
        ScanType.BASIC, ScanFrequency.MANUAL, False, matched.get(ScanFrequency.MANUAL, ())
    )


def _enhanced(
    config: RegistryScanningConfiguration,
    matched: Mapping[ScanFrequency, tuple[RepositoryFilter, ...]],
) -> RepositoryScanning:
    if not config.rules:
        return RepositoryScanning(ScanType.ENHANCED, ScanFrequency.CONTINUOUS_SCAN, True)
    # Continuous first: it wins when both match.
    for frequency in (ScanFrequency.CONTINUOUS_SCAN, ScanFrequency.SCAN_ON_PUSH):
        if frequency in matched:
            return RepositoryScanning(ScanType.ENHANCED, frequency, True, matched[frequency])
    return RepositoryScanning(ScanType.ENHANCED, ScanFrequency.MANUAL, False, automatic=False)


# -- validation ------------------------------------------------------------------------------


def check_configuration(config: RegistryScanningConfiguration) -> RegistryScanningConfiguration:
    """``config`` when ECR would take it; else InvalidParameter naming the first fault.

    The API checks the model's bounds before this (``shapes``); they are checked again here
    for callers that do not come through it.
    """
    if len(config.rules) > MAX_RULES:
        raise _invalid("rules", f"Member must have length less than or equal to {MAX_RULES}")
    allowed = ALLOWED_FREQUENCIES[config.scan_type]
    for index, rule in enumerate(config.rules, start=1):
        where = f"rules.{index}.member"
        if rule.scan_frequency not in allowed:
            raise _invalid(
                f"{where}.scanFrequency",
                f"Scan frequency {rule.scan_frequency} is not supported for scan type "
                f"{config.scan_type}; valid values are: {', '.join(sorted(allowed))}",
            )
        if len(rule.repository_filters) > MAX_FILTERS:
            raise _invalid(
                f"{where}.repositoryFilters",
                f"Member must have length less than or equal to {MAX_FILTERS}",
            )
        for number, repository_filter in enumerate(rule.repository_filters, start=1):
            _check_filter(repository_filter.filter, f"{where}.repositoryFilters.{number}.member")
    return config


def _check_filter(value: str, where: str) -> None:
    if not 1 <= len(value) <= MAX_FILTER_LENGTH or FILTER_PATTERN.fullmatch(value) is None:
        raise _invalid(
            f"{where}.filter", f"must satisfy regular expression '{FILTER_PATTERN.pattern}'"
        )


def _invalid(path: str, constraint: str) -> InvalidParameter:
    return InvalidParameter(
        f"Invalid parameter at '{path}' failed to satisfy constraint: '{constraint}'",
        detail={"path": path},
    )


# -- documents (the API's shape, and how the store keeps rules) --------------------------------


def rules_to_document(rules: Iterable[ScanningRule]) -> list[dict[str, Any]]:
    """Rules as ECR's JSON (camelCase), as the store keeps them."""
    return [
        {
            "scanFrequency": rule.scan_frequency.value,
            "repositoryFilters": [
                {"filter": f.filter, "filterType": f.filter_type.value}
                for f in rule.repository_filters
            ],
        }
        for rule in rules
    ]


def rules_from_document(document: Sequence[Mapping[str, Any]]) -> tuple[ScanningRule, ...]:
    """The inverse of :func:`rules_to_document`. Raises ValueError for an unknown enum value."""
    return tuple(
        ScanningRule(
            ScanFrequency(rule["scanFrequency"]),
            tuple(
                RepositoryFilter(f["filter"], FilterType(f["filterType"]))
                for f in rule["repositoryFilters"]
            ),
        )
        for rule in document
    )
