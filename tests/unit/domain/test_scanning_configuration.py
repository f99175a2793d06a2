"""The registry scanning configuration: filter matching (every example of the ECR user guide's
table), what a configuration means for one repository, and which configurations are refused."""

from __future__ import annotations

import pytest

from moorage.domain.errors import InvalidParameter
from moorage.domain.scanning_configuration import (
    DEFAULT_CONFIGURATION,
    RegistryScanningConfiguration,
    RepositoryFilter,
    RepositoryScanning,
    ScanFrequency,
    ScanningRule,
    ScanType,
    check_configuration,
    effective_scanning,
    filter_matches,
    rules_from_document,
    rules_to_document,
)

BASIC, ENHANCED = ScanType.BASIC, ScanType.ENHANCED
ON_PUSH = ScanFrequency.SCAN_ON_PUSH
CONTINUOUS = ScanFrequency.CONTINUOUS_SCAN
MANUAL = ScanFrequency.MANUAL

# "Filters to choose which repositories are scanned in Amazon ECR", the user guide's table.
NAMES = ("prod", "repo-prod", "prod-repo", "repo-prod-repo", "prodrepo")
GUIDE_TABLE = {
    "prod": (True, True, True, True, True),
    "*prod": (True, True, False, False, False),
    "prod*": (True, False, True, False, True),
    "*prod*": (True, True, True, True, True),
    "prod*repo": (False, False, True, False, True),
}


@pytest.mark.parametrize("filter_value", GUIDE_TABLE)
def test_filters_match_as_the_user_guide_table_says(filter_value: str) -> None:
    got = tuple(filter_matches(filter_value, name) for name in NAMES)
    assert got == GUIDE_TABLE[filter_value]


@pytest.mark.parametrize(
    ("filter_value", "name", "matches"),
    [
        ("*", "team/app", True),  # "*" spans "/"
        ("team/*", "team/a/b", True),
        ("team*app", "team/x/app", True),
        ("team/*", "other/team/x", False),  # with "*" the whole name must match
        ("team", "other/team/x", True),  # without, any substring does
        ("a.b", "axb", False),  # "." is a dot
        ("prod*", "PROD", False),
    ],
)
def test_wildcards_and_substrings(filter_value: str, name: str, matches: bool) -> None:
    assert filter_matches(filter_value, name) is matches


def rule(frequency: ScanFrequency, *filters: str) -> ScanningRule:
    return ScanningRule(frequency, tuple(RepositoryFilter(f) for f in filters))


def config(scan_type: ScanType, *rules: ScanningRule) -> RegistryScanningConfiguration:
    return RegistryScanningConfiguration(scan_type, rules)


# -- effective scanning: BASIC -------------------------------------------------------------------


def test_the_default_is_basic_without_rules_and_manual() -> None:
    assert RegistryScanningConfiguration(BASIC, ()) == DEFAULT_CONFIGURATION
    scanning = effective_scanning(DEFAULT_CONFIGURATION, "web", False)
    assert scanning == RepositoryScanning(BASIC, MANUAL, False, ())
    assert scanning.manual_scans
    assert scanning.automatic


def test_basic_scan_on_push_rule_that_matches() -> None:
    scanning = effective_scanning(config(BASIC, rule(ON_PUSH, "prod", "dev*")), "prod-api", False)
    assert scanning == RepositoryScanning(BASIC, ON_PUSH, True, (RepositoryFilter("prod"),))


def test_basic_falls_back_on_the_repository_flag_then_manual() -> None:
    basic = config(BASIC, rule(ON_PUSH, "prod"))
    assert effective_scanning(basic, "dev", True) == RepositoryScanning(BASIC, ON_PUSH, True, ())
    assert effective_scanning(basic, "dev", False) == RepositoryScanning(BASIC, MANUAL, False, ())


def test_basic_manual_rule_reports_its_filters_but_scan_on_push_wins() -> None:
    basic = config(BASIC, rule(MANUAL, "app"), rule(ON_PUSH, "prod"))
    assert effective_scanning(basic, "app", False) == RepositoryScanning(
        BASIC, MANUAL, False, (RepositoryFilter("app"),)
    )
    assert effective_scanning(basic, "prod-app", False).scan_frequency is ON_PUSH


def test_a_rule_without_filters_matches_nothing() -> None:
    basic = config(BASIC, rule(ON_PUSH))
    assert effective_scanning(basic, "anything", False).scan_frequency is MANUAL


# -- effective scanning: ENHANCED ----------------------------------------------------------------


def test_enhanced_without_rules_scans_everything_continuously() -> None:
    scanning = effective_scanning(config(ENHANCED), "web", False)
    assert scanning == RepositoryScanning(ENHANCED, CONTINUOUS, True, ())
    assert scanning.continuous
    assert not scanning.manual_scans


def test_enhanced_continuous_wins_over_scan_on_push() -> None:
    enhanced = config(ENHANCED, rule(ON_PUSH, "prod*"), rule(CONTINUOUS, "*repo"))
    assert effective_scanning(enhanced, "prod-repo", False) == RepositoryScanning(
        ENHANCED, CONTINUOUS, True, (RepositoryFilter("*repo"),)
    )
    assert effective_scanning(enhanced, "prod-api", False) == RepositoryScanning(
        ENHANCED, ON_PUSH, True, (RepositoryFilter("prod*"),)
    )


def test_enhanced_leaves_unmatched_repositories_unscanned_whatever_their_flag() -> None:
    enhanced = config(ENHANCED, rule(CONTINUOUS, "prod"))
    scanning = effective_scanning(enhanced, "dev", True)
    # ScanFrequency has no "off": reported as MANUAL without scan on push (our decision).
    assert scanning == RepositoryScanning(ENHANCED, MANUAL, False, (), automatic=False)
    assert not scanning.manual_scans


def test_filters_of_two_rules_with_one_frequency_add_up() -> None:
    basic = config(BASIC, rule(ON_PUSH, "a*"), rule(ON_PUSH, "*z", "q"))
    assert effective_scanning(basic, "abz", False).applied_filters == (
        RepositoryFilter("a*"),
        RepositoryFilter("*z"),
    )


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scan_type", "frequency"),
    [(BASIC, ON_PUSH), (BASIC, MANUAL), (ENHANCED, ON_PUSH), (ENHANCED, CONTINUOUS)],
)
def test_frequencies_each_scan_type_takes(scan_type: ScanType, frequency: ScanFrequency) -> None:
    checked = config(scan_type, rule(frequency, "*"))
    assert check_configuration(checked) is checked


@pytest.mark.parametrize(("scan_type", "frequency"), [(BASIC, CONTINUOUS), (ENHANCED, MANUAL)])
def test_frequencies_a_scan_type_refuses(scan_type: ScanType, frequency: ScanFrequency) -> None:
    # The API reference (RegistryScanningRule.scanFrequency) names ENHANCED's two and BASIC's
    # SCAN_ON_PUSH (MANUAL being its default); AWS documents no error, so this one is ours.
    with pytest.raises(InvalidParameter) as raised:
        check_configuration(config(scan_type, rule(ON_PUSH, "a"), rule(frequency, "b")))
    assert "'rules.2.member.scanFrequency'" in raised.value.message
    assert f"{frequency} is not supported for scan type {scan_type}" in raised.value.message


def test_bounds_of_the_model() -> None:
    with pytest.raises(InvalidParameter, match="'rules'"):
        check_configuration(config(BASIC, *[rule(ON_PUSH, "a")] * 3))
    with pytest.raises(InvalidParameter, match="repositoryFilters'"):
        check_configuration(config(BASIC, rule(ON_PUSH, *["a"] * 101)))
    for bad in ("", "Prod", "a..b", "-a", "a" * 256, "a b"):
        with pytest.raises(InvalidParameter, match=r"repositoryFilters\.1\.member\.filter"):
            check_configuration(config(BASIC, rule(ON_PUSH, bad)))


def test_rules_round_trip_through_their_document() -> None:
    rules = (rule(ON_PUSH, "prod*", "x"), rule(CONTINUOUS))
    document = rules_to_document(rules)
    assert document[0] == {
        "scanFrequency": "SCAN_ON_PUSH",
        "repositoryFilters": [
            {"filter": "prod*", "filterType": "WILDCARD"},
            {"filter": "x", "filterType": "WILDCARD"},
        ],
    }
    assert rules_from_document(document) == rules
