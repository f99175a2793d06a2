"""Lifecycle policies: ECR's validation messages, tag matching, AWS's worked examples, and the
evaluator's promises checked on random repositories and policies."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moorage.domain.digests import Digest
from moorage.domain.errors import InvalidParameter, LifecyclePolicyInvalid
from moorage.domain.lifecycle import (
    EXPIRE,
    MAX_TEXT_LENGTH,
    MIN_TEXT_LENGTH,
    TRANSITION_TO_ARCHIVE,
    ActionType,
    Candidate,
    CountType,
    Decision,
    LifecyclePolicy,
    Rule,
    RuleAction,
    Selection,
    StorageClass,
    TagStatus,
    evaluate,
    parse_lifecycle_policy,
    selects,
    tags_match,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
PREFIX = (
    "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
    "'Lifecycle policy validation failure: "
)

Json = dict[str, Any]


def text(document: object) -> str:
    """The policy text for ``document``, padded with whitespace to ECR's minimum length."""
    return json.dumps(document, indent=2).ljust(MIN_TEXT_LENGTH)


def rule(
    priority: int,
    tag_status: str = "any",
    count_type: str = "imageCountMoreThan",
    count_number: int = 1,
    *,
    prefixes: list[str] | None = None,
    patterns: list[str] | None = None,
    storage_class: str | None = None,
    action: Json | None = None,
) -> Json:
    selection: Json = {"tagStatus": tag_status}
    if prefixes is not None:
        selection["tagPrefixList"] = prefixes
    if patterns is not None:
        selection["tagPatternList"] = patterns
    if storage_class is not None:
        selection["storageClass"] = storage_class
    selection["countType"] = count_type
    if count_type != "imageCountMoreThan":
        selection["countUnit"] = "days"
    selection["countNumber"] = count_number
    return {
        "rulePriority": priority,
        "selection": selection,
        "action": action or {"type": "expire"},
    }


def policy(*rules: Json) -> LifecyclePolicy:
    return parse_lifecycle_policy(text({"rules": list(rules)}))


def image(
    name: str,
    tags: list[str],
    days: float,
    *,
    pulled_days: float | None = None,
    storage_class: StorageClass = StorageClass.STANDARD,
    archived_days: float | None = None,
    referenced_by_index: bool = False,
) -> Candidate:
    return Candidate(
        digest=Digest.of(name.encode()),
        pushed_at=NOW - timedelta(days=days),
        tags=frozenset(tags),
        last_pulled_at=None if pulled_days is None else NOW - timedelta(days=pulled_days),
        storage_class=storage_class,
        archived_at=None if archived_days is None else NOW - timedelta(days=archived_days),
        referenced_by_index=referenced_by_index,
    )


def acted_on(decisions: list[Decision], images: list[Candidate]) -> dict[str, int]:
    """Image name -> priority of the rule that acts on it (names are the digests' preimages)."""
    names = {Digest.of(n.encode()): n for n in "ABCDEFGHIJ"}
    names.update({i.digest: str(i.digest) for i in images if i.digest not in names})
    return {names[d.digest]: d.rule_priority for d in decisions}


# -- parsing -------------------------------------------------------------------------------


def test_a_valid_policy_parses_into_rules_sorted_by_priority() -> None:
    parsed = parse_lifecycle_policy(
        text(
            {
                "rules": [
                    {
                        "rulePriority": 10,
                        "description": "keep the last 5 images",
                        "selection": {
                            "tagStatus": "any",
                            "countType": "imageCountMoreThan",
                            "countNumber": 5,
                        },
                        "action": {"type": "expire"},
                    },
                    {
                        "rulePriority": 2,
                        "selection": {
                            "tagStatus": "tagged",
                            "tagPatternList": ["prod*", "*-rc*"],
                            "countType": "sinceImagePulled",
                            "countUnit": "days",
                            "countNumber": 30,
                        },
                        "action": {"type": "transition", "targetStorageClass": "archive"},
                    },
                    {
                        "rulePriority": 3,
                        "selection": {
                            "tagStatus": "untagged",
                            "storageClass": "archive",
                            "countType": "sinceImageTransitioned",
                            "countUnit": "days",
                            "countNumber": 120,
                        },
                        "action": {"type": "expire"},
                    },
                ]
            }
        )
    )
    assert parsed == LifecyclePolicy(
        (
            Rule(
                2,
                Selection(
                    TagStatus.TAGGED,
                    CountType.SINCE_IMAGE_PULLED,
                    30,
                    "days",
                    tag_patterns=("prod*", "*-rc*"),
                ),
                RuleAction(ActionType.TRANSITION, StorageClass.ARCHIVE),
            ),
            Rule(
                3,
                Selection(
                    TagStatus.UNTAGGED,
                    CountType.SINCE_IMAGE_TRANSITIONED,
                    120,
                    "days",
                    storage_class=StorageClass.ARCHIVE,
                ),
                EXPIRE,
            ),
            Rule(
                10,
                Selection(TagStatus.ANY, CountType.IMAGE_COUNT_MORE_THAN, 5),
                EXPIRE,
                "keep the last 5 images",
            ),
        )
    )


def test_the_error_is_an_invalid_parameter() -> None:
    # The ECR API maps InvalidParameter to InvalidParameterException in one table.
    assert issubclass(LifecyclePolicyInvalid, InvalidParameter)


def test_up_to_four_wildcards_per_pattern_are_allowed() -> None:
    # AWS's own example of valid patterns.
    parsed = policy(rule(1, "tagged", patterns=["*test*1*2*3", "test*1*2*3*"]))
    assert parsed.rules[0].selection.tag_patterns == ("*test*1*2*3", "test*1*2*3*")


def test_any_is_last_per_storage_class() -> None:
    # AWS's archive examples: an any/standard rule at 1 and an any/archive rule at 2.
    parsed = policy(
        rule(
            1,
            "any",
            "sinceImagePushed",
            30,
            action={"type": "transition", "targetStorageClass": "archive"},
        ),
        rule(2, "any", "sinceImageTransitioned", 365, storage_class="archive"),
    )
    assert [r.priority for r in parsed.rules] == [1, 2]


def test_untagged_and_prefix_checks_are_per_storage_class() -> None:
    parsed = policy(
        rule(1, "untagged", "sinceImagePushed", 1),
        rule(2, "tagged", "sinceImagePushed", 9, prefixes=["prod"]),
        rule(3, "untagged", "sinceImageTransitioned", 90, storage_class="archive"),
        rule(4, "tagged", "sinceImageTransitioned", 90, storage_class="archive", prefixes=["prod"]),
    )
    assert len(parsed.rules) == 4


def test_rule_priorities_need_not_be_contiguous() -> None:
    assert [r.priority for r in policy(rule(7, "tagged", prefixes=["a"]), rule(30)).rules] == [
        7,
        30,
    ]


VALID_RULE = rule(1)


def with_selection(**changes: Any) -> Json:
    """``VALID_RULE`` with selection properties changed (``None`` removes one)."""
    changed = copy.deepcopy(VALID_RULE)
    for key, value in changes.items():
        if value is None:
            changed["selection"].pop(key, None)
        else:
            changed["selection"][key] = value
    return {"rules": [changed]}


def with_rule(**changes: Any) -> Json:
    changed = copy.deepcopy(VALID_RULE)
    for key, value in changes.items():
        if value is None:
            changed.pop(key)
        else:
            changed[key] = value
    return {"rules": [changed]}


INVALID: list[tuple[str, str, str]] = [
    # (id, policy text, detail)
    ("not-json", "{" + " " * 120, "Could not map policyString into LifecyclePolicy."),
    (
        "nan-is-not-json",
        text({"rules": [VALID_RULE]}).replace('"countNumber": 1', '"countNumber": NaN'),
        "Could not map policyString into LifecyclePolicy.",
    ),
    (
        "root-not-object",
        text([VALID_RULE]),
        'instance type (array) does not match any allowed primitive type (allowed: ["object"])',
    ),
    ("missing-rules", text({}), 'object has missing required properties (["rules"])'),
    (
        "unknown-root-property",
        text({"rules": [VALID_RULE], "version": "1"}),
        'object instance has properties which are not allowed by the schema: (["version"])',
    ),
    (
        "rules-not-array",
        text({"rules": VALID_RULE}),
        'instance type (object) does not match any allowed primitive type (allowed: ["array"])',
    ),
    (
        "no-rules",
        text({"rules": []}),
        "array is too short: must have at least 1 elements but instance has 0 elements",
    ),
    (
        "more-than-50-rules",
        text({"rules": [rule(p, "tagged", prefixes=[f"t{p}"]) for p in range(1, 52)]}),
        "array is too long: must have at most 50 elements but instance has 51 elements",
    ),
    (
        "rule-not-object",
        text({"rules": ["expire everything"]}),
        'instance type (string) does not match any allowed primitive type (allowed: ["object"])',
    ),
    (
        "rule-missing-properties",
        text(with_rule(action=None, selection=None)),
        'object has missing required properties (["action","selection"])',
    ),
    (
        "rule-unknown-property",
        text(with_rule(enabled=True)),
        'object instance has properties which are not allowed by the schema: (["enabled"])',
    ),
    (
        "priority-zero",
        text(with_rule(rulePriority=0)),
        "numeric instance is lower than the required minimum (minimum: 1, found: 0)",
    ),
    (
        "priority-string",
        text(with_rule(rulePriority="1")),
        'instance type (string) does not match any allowed primitive type (allowed: ["integer"])',
    ),
    (
        "priority-boolean",
        text(with_rule(rulePriority=True)),
        'instance type (boolean) does not match any allowed primitive type (allowed: ["integer"])',
    ),
    (
        "priority-fraction",
        text(with_rule(rulePriority=1.5)),
        'instance type (number) does not match any allowed primitive type (allowed: ["integer"])',
    ),
    (
        "description-not-string",
        text(with_rule(description=7)),
        'instance type (integer) does not match any allowed primitive type (allowed: ["string"])',
    ),
    (
        "selection-missing-count-number",
        text(with_selection(countNumber=None)),
        'object has missing required properties (["countNumber"])',
    ),
    (
        "selection-unknown-property",
        text(with_selection(tagSuffixList=["x"])),
        'object instance has properties which are not allowed by the schema: (["tagSuffixList"])',
    ),
    (
        "tag-status-not-in-enum",
        text(with_selection(tagStatus="TAGGED")),
        'instance value ("TAGGED") not found in enum '
        '(possible values: ["tagged","untagged","any"])',
    ),
    (
        "tagged-without-tag-list",
        text(with_selection(tagStatus="tagged")),
        "tagStatus tagged requires exactly one of tagPatternList and tagPrefixList",
    ),
    (
        "tagged-with-both-tag-lists",
        text(with_selection(tagStatus="tagged", tagPrefixList=["a"], tagPatternList=["b*"])),
        "tagStatus tagged requires exactly one of tagPatternList and tagPrefixList",
    ),
    (
        "untagged-with-prefixes",
        text(with_selection(tagStatus="untagged", tagPrefixList=["a"])),
        "tagPatternList and tagPrefixList are not allowed with tagStatus untagged",
    ),
    (
        "any-with-patterns",
        text(with_selection(tagPatternList=["a*"])),
        "tagPatternList and tagPrefixList are not allowed with tagStatus any",
    ),
    (
        "more-than-four-wildcards",
        text(with_selection(tagStatus="tagged", tagPatternList=["test*1*2*3*4*5*6"])),
        'tag pattern "test*1*2*3*4*5*6" has more than 4 wildcards (*)',
    ),
    (
        "empty-tag-list",
        text(with_selection(tagStatus="tagged", tagPrefixList=[])),
        "array is too short: must have at least 1 elements but instance has 0 elements",
    ),
    (
        "tag-list-not-array",
        text(with_selection(tagStatus="tagged", tagPrefixList="prod")),
        'instance type (string) does not match any allowed primitive type (allowed: ["array"])',
    ),
    (
        "empty-prefix",
        text(with_selection(tagStatus="tagged", tagPrefixList=[""])),
        'string "" is too short (length: 0, required minimum: 1)',
    ),
    (
        "storage-class-not-in-enum",
        text(with_selection(storageClass="glacier")),
        'instance value ("glacier") not found in enum (possible values: ["standard","archive"])',
    ),
    (
        "count-type-not-in-enum",
        text(with_selection(countType="sinceImageCreated")),
        'instance value ("sinceImageCreated") not found in enum (possible values: '
        '["imageCountMoreThan","sinceImagePushed","sinceImagePulled","sinceImageTransitioned"])',
    ),
    (
        "since-without-count-unit",
        text(with_selection(countType="sinceImagePushed")),
        'object has missing required properties (["countUnit"])',
    ),
    (
        "count-unit-with-image-count",
        text(with_selection(countUnit="days")),
        'object instance has properties which are not allowed by the schema: (["countUnit"])',
    ),
    (
        "count-unit-not-days",
        text(with_selection(countType="sinceImagePushed", countUnit="hours")),
        'instance value ("hours") not found in enum (possible values: ["days"])',
    ),
    (
        "count-number-zero",
        text(with_selection(countNumber=0)),
        "numeric instance is lower than the required minimum (minimum: 1, found: 0)",
    ),
    (
        "action-missing-type",
        text(with_rule(action={})),
        'object has missing required properties (["type"])',
    ),
    (
        "action-unknown-property",
        text(with_rule(action={"type": "expire", "when": "now"})),
        'object instance has properties which are not allowed by the schema: (["when"])',
    ),
    (
        "action-type-not-in-enum",
        text(with_rule(action={"type": "delete"})),
        'instance value ("delete") not found in enum (possible values: ["expire","transition"])',
    ),
    (
        "transition-without-target",
        text(with_rule(action={"type": "transition"})),
        'object has missing required properties (["targetStorageClass"])',
    ),
    (
        "expire-with-target",
        text(with_rule(action={"type": "expire", "targetStorageClass": "archive"})),
        "object instance has properties which are not allowed by the schema: "
        '(["targetStorageClass"])',
    ),
    (
        "transition-to-standard",
        text(with_rule(action={"type": "transition", "targetStorageClass": "standard"})),
        'instance value ("standard") not found in enum (possible values: ["archive"])',
    ),
    (
        "archive-without-since-transitioned",
        text(with_selection(storageClass="archive")),
        "storageClass archive can only be used with countType sinceImageTransitioned",
    ),
    (
        "since-transitioned-on-standard",
        text({"rules": [rule(1, "any", "sinceImageTransitioned", 90)]}),
        "countType sinceImageTransitioned requires storageClass archive",
    ),
    (
        "since-transitioned-with-transition",
        text(
            {
                "rules": [
                    rule(
                        1,
                        "any",
                        "sinceImageTransitioned",
                        90,
                        storage_class="archive",
                        action={"type": "transition", "targetStorageClass": "archive"},
                    )
                ]
            }
        ),
        "countType sinceImageTransitioned can only be used with action type expire",
    ),
    (
        "duplicate-priority",
        text({"rules": [rule(3, "tagged", prefixes=["a"]), rule(3)]}),
        "rulePriority 3 is used by more than one rule",
    ),
    (
        "any-not-last",
        text({"rules": [rule(1), rule(2, "tagged", prefixes=["a"])]}),
        "rule 1 with tagStatus any must have the highest rulePriority among the rules "
        "for storageClass standard",
    ),
    (
        "two-untagged-rules",
        text({"rules": [rule(1, "untagged"), rule(2, "untagged", "sinceImagePushed", 5)]}),
        "only one rule may select untagged images for storageClass standard (rules 1, 2)",
    ),
    (
        "prefix-in-two-rules",
        text(
            {
                "rules": [
                    rule(1, "tagged", prefixes=["prod", "web"]),
                    rule(2, "tagged", prefixes=["beta", "prod"]),
                ]
            }
        ),
        'tag prefix "prod" is used by rules 1 and 2; tag prefixes must be unique across rules',
    ),
    (
        "text-too-short",
        '{"rules": []}',  # the length is checked before anything else
        "string is too short (length: 13, required minimum: 100)",
    ),
    (
        "text-too-long",
        text(with_rule(description="x" * MAX_TEXT_LENGTH))[: MAX_TEXT_LENGTH + 1],
        "string is too long (length: 30721, maximum allowed: 30720)",
    ),
]


@pytest.mark.parametrize(
    ("policy_text", "detail"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_policies_are_refused_in_ecr_words(policy_text: str, detail: str) -> None:
    with pytest.raises(LifecyclePolicyInvalid) as raised:
        parse_lifecycle_policy(policy_text)
    assert raised.value.message == f"{PREFIX}{detail}'"
    assert str(raised.value) == raised.value.message


# -- matching ------------------------------------------------------------------------------


def tagged(*, prefixes: tuple[str, ...] = (), patterns: tuple[str, ...] = ()) -> Selection:
    return Selection(
        TagStatus.TAGGED,
        CountType.IMAGE_COUNT_MORE_THAN,
        1,
        tag_prefixes=prefixes,
        tag_patterns=patterns,
    )


@pytest.mark.parametrize(
    ("selection", "tags", "matches"),
    [
        # Prefixes: every prefix must start some tag; extra tags do not matter (§5.3).
        (tagged(prefixes=("prod",)), {"prod"}, True),
        (tagged(prefixes=("prod",)), {"production-1"}, True),
        (tagged(prefixes=("prod",)), {"my-prod"}, False),
        (tagged(prefixes=("alpha", "beta")), {"alpha-1", "beta-1", "gamma-1"}, True),
        (tagged(prefixes=("alpha", "beta")), {"alpha-1"}, False),
        (tagged(prefixes=("alpha", "beta")), {"alphabeta"}, False),
        (tagged(prefixes=("alpha", "alph")), {"alpha-1"}, True),  # one tag may serve two
        # Patterns: every pattern must match some whole tag; * is any run, the empty one too.
        (tagged(patterns=("prod*",)), {"prod"}, True),
        (tagged(patterns=("prod*",)), {"prod1"}, True),
        (tagged(patterns=("prod*",)), {"production-team1"}, True),
        (tagged(patterns=("*prod*",)), {"repo-production"}, True),
        (tagged(patterns=("prod",)), {"prod1"}, False),  # no star: the whole tag
        (tagged(patterns=("prod",)), {"prod"}, True),
        (tagged(patterns=("v*.*",)), {"v12"}, False),  # the dot is literal
        (tagged(patterns=("prod*", "*-rc")), {"prod-1", "2.0-rc"}, True),
        (tagged(patterns=("prod*", "*-rc")), {"prod-1"}, False),
        (tagged(patterns=("*",)), set(), False),  # tagged never selects an untagged image
        (Selection(TagStatus.UNTAGGED, CountType.IMAGE_COUNT_MORE_THAN, 1), set(), True),
        (Selection(TagStatus.UNTAGGED, CountType.IMAGE_COUNT_MORE_THAN, 1), {"a"}, False),
        (Selection(TagStatus.ANY, CountType.IMAGE_COUNT_MORE_THAN, 1), set(), True),
        (Selection(TagStatus.ANY, CountType.IMAGE_COUNT_MORE_THAN, 1), {"a"}, True),
    ],
)
def test_tag_matching(selection: Selection, tags: set[str], matches: bool) -> None:
    assert tags_match(selection, tags) is matches


def test_a_rule_selects_only_images_of_its_storage_class() -> None:
    standard = Selection(TagStatus.ANY, CountType.IMAGE_COUNT_MORE_THAN, 1)
    archive = Selection(
        TagStatus.ANY,
        CountType.SINCE_IMAGE_TRANSITIONED,
        90,
        "days",
        storage_class=StorageClass.ARCHIVE,
    )
    live = image("A", [], 1)
    archived = image("B", [], 1, storage_class=StorageClass.ARCHIVE)
    assert selects(standard, live)
    assert not selects(standard, archived)
    assert selects(archive, archived)
    assert not selects(archive, live)


# -- AWS's worked examples (reference §5.4) ------------------------------------------------

EXAMPLE_AB = [
    image("A", ["beta-1", "prod-1"], 10),
    image("B", ["beta-2", "prod-2"], 9),
    image("C", ["beta-3"], 8),
]


def test_example_a_a_higher_rule_claims_what_it_selects() -> None:
    rules = policy(
        rule(1, "tagged", prefixes=["prod"]),
        rule(2, "tagged", prefixes=["beta"]),
    )
    # Rule 2 would take A and B, but both carry a prod tag: rule 1 claimed them.
    assert acted_on(evaluate(rules, EXAMPLE_AB, NOW), EXAMPLE_AB) == {"A": 1}


def test_example_b_priorities_swapped() -> None:
    rules = policy(
        rule(1, "tagged", prefixes=["beta"]),
        rule(2, "tagged", prefixes=["prod"]),
    )
    assert acted_on(evaluate(rules, EXAMPLE_AB, NOW), EXAMPLE_AB) == {"A": 1, "B": 1}


def test_example_c_every_prefix_must_match_and_age_decides() -> None:
    images = [
        image("A", ["alpha-1"], 12),
        image("B", ["beta-1"], 11),
        image("C", ["alpha-2", "beta-2"], 10),
        image("D", ["alpha-3"], 4),
        image("E", ["beta-3"], 3),
        image("F", ["alpha-4", "beta-4"], 2),
    ]
    rules = policy(rule(1, "tagged", "sinceImagePushed", 5, prefixes=["alpha", "beta"]))
    assert acted_on(evaluate(rules, images, NOW), images) == {"C": 1}


def test_example_d_extra_tags_do_not_prevent_a_match() -> None:
    images = [
        image("A", ["alpha-1", "beta-1", "gamma-1"], 10),
        image("B", ["alpha-2", "beta-2"], 9),
        image("C", ["alpha-3", "beta-3", "gamma-2"], 8),
    ]
    rules = policy(rule(1, "tagged", prefixes=["alpha", "beta"]))
    assert acted_on(evaluate(rules, images, NOW), images) == {"A": 1, "B": 1}


def test_example_e_any_counts_tagged_and_untagged_together() -> None:
    images = [
        image("A", ["alpha-1"], 4),
        image("B", ["beta-1"], 3),
        image("C", [], 2),
        image("D", ["alpha-2"], 1),
    ]
    rules = policy(rule(1, "any"))
    assert acted_on(evaluate(rules, images, NOW), images) == {"A": 1, "B": 1, "C": 1}


def test_example_f_a_last_any_rule_counts_claimed_images_but_acts_on_the_rest() -> None:
    images = [
        image("A", ["alpha-1", "beta-1"], 4),
        image("B", [], 3),
        image("C", ["alpha-2"], 2),
        # D and E are both "1 day" old in AWS's example; E is the newer one there (R3 keeps
        # E and expires D), so it is pushed an hour later here.
        image("D", ["git hash"], 1 + 1 / 24),
        image("E", [], 1),
    ]
    rules = policy(
        rule(1, "tagged", prefixes=["alpha"]),
        rule(2, "untagged", "sinceImagePushed", 1),
        rule(3, "any"),
    )
    assert acted_on(evaluate(rules, images, NOW), images) == {"A": 1, "B": 2, "D": 3}


# -- evaluator details ---------------------------------------------------------------------


def test_index_children_are_counted_but_never_expired() -> None:
    rules = policy(rule(1, "untagged"))
    # The newest image is an index child: it takes the one kept place, and is kept.
    images = [
        image("A", [], 1, referenced_by_index=True),
        image("B", [], 2),
        image("C", [], 3),
    ]
    assert acted_on(evaluate(rules, images, NOW), images) == {"B": 1, "C": 1}
    # An old child past the kept count is still not expired, and nothing else is taken instead.
    images = [image("A", [], 1), image("B", [], 2, referenced_by_index=True)]
    assert evaluate(rules, images, NOW) == []


def test_an_index_child_is_claimed_by_the_rule_that_selects_it() -> None:
    rules = policy(rule(1, "untagged", "sinceImagePushed", 1), rule(2, "any"))
    images = [image("A", ["v1"], 1), image("B", [], 5, referenced_by_index=True)]
    # Rule 1 selects B (too old, but protected); rule 2 may not take it either.
    assert evaluate(rules, images, NOW) == []


@pytest.mark.parametrize(
    ("age", "acts"),
    [
        (timedelta(days=2), True),
        (timedelta(days=1, hours=23, minutes=59), False),  # one whole day, not more than one
        (timedelta(days=1), False),
        (timedelta(days=-1), False),  # pushed "in the future" (clock skew) is age 0
    ],
)
def test_ages_are_whole_days(age: timedelta, acts: bool) -> None:
    rules = policy(rule(1, "any", "sinceImagePushed", 1))
    candidate = Candidate(Digest.of(b"A"), pushed_at=NOW - age)
    assert (evaluate(rules, [candidate], NOW) != []) is acts


def test_since_image_pulled_uses_the_last_pull_and_falls_back_to_the_push() -> None:
    rules = policy(rule(1, "any", "sinceImagePulled", 30))
    images = [
        image("A", [], 100, pulled_days=2),  # old but pulled recently: kept
        image("B", [], 100, pulled_days=40),
        image("C", [], 40),  # never pulled: its push time counts
        image("D", [], 10),
    ]
    assert acted_on(evaluate(rules, images, NOW), images) == {"B": 1, "C": 1}


def test_transition_rules_decide_transition_and_claim_their_images() -> None:
    rules = policy(
        rule(
            1,
            "tagged",
            "sinceImagePushed",
            30,
            prefixes=["release"],
            action={"type": "transition", "targetStorageClass": "archive"},
        ),
        rule(2, "any", "sinceImagePushed", 60),
    )
    images = [
        image("A", ["release-1"], 90),
        image("B", ["dev-1"], 90),
        image("C", ["release-2"], 5),
    ]
    assert evaluate(rules, images, NOW) == [
        Decision(images[0].digest, TRANSITION_TO_ARCHIVE, 1),
        Decision(images[1].digest, EXPIRE, 2),
    ]


def test_archive_rules_act_on_archived_images_after_at_least_90_days_in_archive() -> None:
    rules = policy(
        rule(1, "any", "sinceImagePushed", 1),
        rule(2, "any", "sinceImageTransitioned", 30, storage_class="archive"),
    )
    images = [
        image("A", [], 400, storage_class=StorageClass.ARCHIVE, archived_days=60),
        image("B", [], 400, storage_class=StorageClass.ARCHIVE, archived_days=91),
        image("C", [], 400, storage_class=StorageClass.ARCHIVE),  # no archive time: the push
        image("D", [], 0.5),
    ]
    # A is past the rule's 30 days but inside AWS's 90-day minimum; the standard rule never
    # sees archived images.
    assert acted_on(evaluate(rules, images, NOW), images) == {"B": 2, "C": 2}


def test_equal_push_times_are_ordered_by_digest() -> None:
    rules = policy(rule(1, "any", count_number=2))
    same = NOW - timedelta(days=1)
    images = [Candidate(Digest.of(bytes([i])), pushed_at=same) for i in range(5)]
    by_digest = sorted(images, key=lambda i: str(i.digest))
    # The greater digest counts as newer: the two greatest are kept.
    expected = [Decision(i.digest, EXPIRE, 1) for i in by_digest[:3]]
    assert evaluate(rules, images, NOW) == expected
    assert evaluate(rules, images[::-1], NOW) == expected


def test_decisions_are_sorted_by_rule_then_digest() -> None:
    rules = policy(rule(1, "tagged", prefixes=["a"]), rule(2, "untagged"))
    images = [image(n, [f"a{n}"] if n in "ABC" else [], 10 - i) for i, n in enumerate("ABCDEFG")]
    decisions = evaluate(rules, images, NOW)
    keys = [(d.rule_priority, str(d.digest)) for d in decisions]
    assert keys == sorted(keys)
    assert {d.rule_priority for d in decisions} == {1, 2}


# -- properties ----------------------------------------------------------------------------

TAGS = ["prod", "prod-1", "prod-2", "beta-1", "beta-2", "alpha-1", "latest", "v1.0", "1.0-rc1"]
PREFIXES = ["prod", "beta", "alpha", "v", "la", "1."]
PATTERNS = ["prod*", "*-1", "*", "v*.*", "latest", "*a*", "*-rc*", "beta-2"]

# Strategies built once: building them inside the composites costs more than drawing.
# A few fixed instants make equal push times common (the tie-break must then decide).
_PUSH_HOURS = st.sampled_from([0, 24, 49, 24 * 10, 24 * 40]) | st.integers(-2, 24 * 120)
_PULL_HOURS = st.none() | st.integers(0, 24 * 120)
_TAG_SETS = st.frozensets(st.sampled_from(TAGS), max_size=3)
_ARCHIVE_DAYS = st.integers(0, 200)
_ONE_IN_FOUR = st.sampled_from([False, False, False, True])
_PATTERN_LISTS = st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2)

PROPERTY_SETTINGS = settings(max_examples=100, derandomize=True, database=None, deadline=None)


@st.composite
def repositories(draw: st.DrawFn) -> list[Candidate]:
    count = draw(st.integers(0, 12))
    images = []
    for i in range(count):
        pushed = NOW - timedelta(hours=draw(_PUSH_HOURS))
        pulled = draw(_PULL_HOURS)
        archived = draw(_ONE_IN_FOUR)
        images.append(
            Candidate(
                digest=Digest.of(f"image-{i}".encode()),
                pushed_at=pushed,
                tags=draw(_TAG_SETS),
                last_pulled_at=None if pulled is None else NOW - timedelta(hours=pulled),
                storage_class=StorageClass.ARCHIVE if archived else StorageClass.STANDARD,
                archived_at=(NOW - timedelta(days=draw(_ARCHIVE_DAYS)) if archived else None),
                referenced_by_index=draw(_ONE_IN_FOUR),
            )
        )
    return images


@st.composite
def policies(draw: st.DrawFn) -> LifecyclePolicy:
    """Random valid policies, built as text so that parsing is exercised too."""
    count = draw(st.integers(1, 5))
    priorities = draw(
        st.lists(st.integers(1, 60), min_size=count + 1, max_size=count + 1, unique=True)
    )
    archive_priority = priorities.pop()
    priorities.sort()
    rules: list[Json] = []
    used_prefixes: set[str] = set()
    untagged_used = False
    for index, priority in enumerate(priorities):
        statuses = ["tagged"]
        if not untagged_used:
            statuses.append("untagged")
        if index == len(priorities) - 1:
            statuses.append("any")  # only the last standard rule may be an any rule
        status = draw(st.sampled_from(statuses))
        untagged_used = untagged_used or status == "untagged"
        prefixes = patterns = None
        if status == "tagged":
            free = [p for p in PREFIXES if p not in used_prefixes]
            if len(free) > 0 and draw(st.booleans()):
                prefixes = draw(
                    st.lists(st.sampled_from(free), min_size=1, max_size=2, unique=True)
                )
                used_prefixes.update(prefixes)
            else:
                patterns = draw(_PATTERN_LISTS)
        count_type = draw(
            st.sampled_from(["imageCountMoreThan", "sinceImagePushed", "sinceImagePulled"])
        )
        action = draw(
            st.sampled_from(
                [{"type": "expire"}, {"type": "transition", "targetStorageClass": "archive"}]
            )
        )
        rules.append(
            rule(
                priority,
                status,
                count_type,
                draw(st.integers(1, 3))
                if count_type == "imageCountMoreThan"
                else draw(st.integers(1, 60)),
                prefixes=prefixes,
                patterns=patterns,
                action=action,
            )
        )
    if draw(st.booleans()):
        status = draw(st.sampled_from(["untagged", "any", "tagged"]))
        rules.append(
            rule(
                archive_priority,
                status,
                "sinceImageTransitioned",
                draw(st.integers(1, 150)),
                patterns=["*a*"] if status == "tagged" else None,
                storage_class="archive",
            )
        )
    return policy(*draw(st.permutations(rules)))


@PROPERTY_SETTINGS
@given(policies(), repositories())
def test_each_image_gets_at_most_one_decision_from_a_rule_that_selects_it(
    rules: LifecyclePolicy, images: list[Candidate]
) -> None:
    decisions = evaluate(rules, images, NOW)
    digests = [d.digest for d in decisions]
    assert len(digests) == len(set(digests))
    by_digest = {i.digest: i for i in images}
    by_priority = {r.priority: r for r in rules.rules}
    for decision in decisions:
        deciding = by_priority[decision.rule_priority]
        assert selects(deciding.selection, by_digest[decision.digest])
        assert decision.action == deciding.action


@PROPERTY_SETTINGS
@given(policies(), repositories())
def test_a_claimed_image_is_never_acted_on_by_a_lower_priority_rule(
    rules: LifecyclePolicy, images: list[Candidate]
) -> None:
    by_digest = {i.digest: i for i in images}
    for decision in evaluate(rules, images, NOW):
        higher = [r for r in rules.rules if r.priority < decision.rule_priority]
        assert not any(selects(r.selection, by_digest[decision.digest]) for r in higher)


@PROPERTY_SETTINGS
@given(policies(), repositories(), st.data())
def test_the_result_does_not_depend_on_the_order_of_images(
    rules: LifecyclePolicy, images: list[Candidate], data: st.DataObject
) -> None:
    expected = evaluate(rules, images, NOW)
    # The reversal always reorders images pushed at the same instant; drawn permutations
    # lean towards the identity.
    assert evaluate(rules, images[::-1], NOW) == expected
    assert evaluate(rules, data.draw(st.permutations(images)), NOW) == expected


@PROPERTY_SETTINGS
@given(policies(), repositories())
def test_index_children_are_never_acted_on(rules: LifecyclePolicy, images: list[Candidate]) -> None:
    children = {i.digest for i in images if i.referenced_by_index}
    assert not any(d.digest in children for d in evaluate(rules, images, NOW))


@PROPERTY_SETTINGS
@given(policies(), repositories())
def test_the_evaluator_is_a_pure_function_of_its_inputs(
    rules: LifecyclePolicy, images: list[Candidate]
) -> None:
    before = (copy.deepcopy(rules), list(images))
    first = evaluate(rules, images, NOW)
    assert evaluate(rules, images, NOW) == first
    assert (rules, images) == before  # nothing was mutated
    # Rebuilt inputs (equal, not identical) give the same answer.
    assert evaluate(copy.deepcopy(rules), [copy.copy(i) for i in images], NOW) == first


def test_a_policy_nested_deeper_than_the_decoder_recurses_is_invalid() -> None:
    # 3,000 levels fit in the 30,720 characters a policy may have; this was a 500.
    text = '{"rules":' + "[" * 3000 + "]" * 3000 + "}"
    with pytest.raises(LifecyclePolicyInvalid, match="Could not map policyString"):
        parse_lifecycle_policy(text)
