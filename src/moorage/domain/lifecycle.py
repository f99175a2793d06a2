"""Lifecycle policies: parse and validate the policy text, then decide what happens to images.

Two pure entry points (no I/O, no clock: the caller passes ``now``), shared by the lifecycle
worker and ``GetLifecyclePolicyPreview``::

    parse_lifecycle_policy(text) -> LifecyclePolicy     raises LifecyclePolicyInvalid
    evaluate(policy, images, now) -> list[Decision]

Validation (shared reference §5.1, §5.2) runs in this order and reports the first failure, in
ECR's words: ``Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint:
'Lifecycle policy validation failure: <detail>'``. Where ECR's detail comes from its JSON schema
(missing or unknown properties, types, enums, minimums, array sizes) we use the same schema
validator wording; the cross-rule checks (unique priorities, ``any`` last, one ``untagged`` rule,
unique prefixes, wildcard count) have details in our own words, since no observed AWS text is
recorded for them.

1. text length 100..30,720 characters; then JSON (an object);
2. the document, each rule, its ``selection`` and ``action``, in document order: required and
   allowed properties, JSON types, enum values, minimums; then the combinations inside a rule
   (tag lists against ``tagStatus``, ``countUnit`` against ``countType``, storage classes against
   ``countType`` and ``action``);
3. across rules: unique ``rulePriority``; then, per storage class, an ``any`` rule has the highest
   priority, at most one ``untagged`` rule, and no tag prefix used by two rules.

Evaluation (§5.4), in our words. Rules are applied in ascending ``rulePriority``, all against
the same snapshot of the repository. For each rule:

- its *selection* is every image of the rule's storage class whose tags satisfy the rule's tag
  status and tag lists (§5.3: every prefix starts some tag; every pattern matches some whole
  tag, ``*`` being any run of characters);
- its *candidates* come from the count criterion over the whole selection:
  ``imageCountMoreThan N`` sorts the selection newest to oldest by push time and takes all
  after the N-th; ``sinceImagePushed``/``sinceImagePulled``/``sinceImageTransitioned N`` take
  the images whose age in whole days (floor of elapsed time) exceeds N;
- a candidate gets a :class:`Decision` naming this rule unless an earlier rule *selected* it
  ("claimed": even when that rule's count left it alone) or it is a child of an index;
- then everything this rule selected becomes claimed.

Claimed and protected images stay in later rules' selections, so they still take up places in
an ``imageCountMoreThan`` count: they are kept, and they are counted. Each image therefore gets
at most one decision, from the highest-precedence rule whose tags select it.

Our decisions where AWS leaves it open (reference §13.4) or where moorage differs:

- **Index children** (``referenced_by_index``) are counted like any other image but never acted
  on, neither expired nor transitioned, by any rule. They are claimed by the rules that select
  them as usual.
- **Ties**: images pushed at the same instant are ordered by digest (the greater digest counts
  as the newer), so the result never depends on the order of ``images``. Decisions are returned
  sorted by rule priority, then digest.
- **Days**: an image N days and 23 hours old is N days old; ``sinceImagePushed 1`` acts on it
  from two whole days. ECR acts "within 24 hours" of the criterion, so this stays inside ECR's
  own imprecision and errs towards keeping. A time in the future counts as age 0.
- **sinceImagePulled** falls back to the push time for an image never pulled. ECR's
  ``lastActivatedAt`` (restored from archive) is not modelled: nothing is restored here.
  ``sinceImagePulled`` is accepted with either action (AWS documents it with ``transition``).
- **sinceImageTransitioned** requires ``storageClass: archive`` and ``action: expire``, and uses
  the time the image was archived (``archived_at``, else its push time). AWS forbids expiring an
  archived image before 90 days in archive; we accept a smaller ``countNumber`` and apply the
  90-day floor during evaluation, so no policy can expire an image earlier.
- **Archive storage** does not exist in moorage yet. Parsing accepts ``transition`` rules and
  ``storageClass: archive`` as ECR does, and :func:`evaluate` returns
  ``ActionType.TRANSITION`` decisions for them (so a preview shows what ECR would do). Callers
  that cannot archive must ignore those decisions; the image stays as it is, and it remains
  claimed by the transition rule, so a lower-priority rule will not expire it instead. Every
  image in a repository without archive storage is ``standard``, so ``archive`` rules select
  nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple, NoReturn, TypeVar

from moorage.domain.digests import Digest
from moorage.domain.errors import LifecyclePolicyInvalid
from moorage.domain.mutability import wildcard_matches
from moorage.domain.wildcards import star_wildcard

_E = TypeVar("_E", bound=StrEnum)

MIN_TEXT_LENGTH = 100
MAX_TEXT_LENGTH = 30_720
MAX_RULES = 50
MAX_WILDCARDS_PER_PATTERN = 4
# AWS: archived images have a 90-day minimum storage duration that lifecycle cannot shorten.
ARCHIVE_MINIMUM_DAYS = 90

_PREFIX = (
    "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
    "'Lifecycle policy validation failure: "
)


class TagStatus(StrEnum):
    TAGGED = "tagged"
    UNTAGGED = "untagged"
    ANY = "any"


class StorageClass(StrEnum):
    STANDARD = "standard"
    ARCHIVE = "archive"


class CountType(StrEnum):
    IMAGE_COUNT_MORE_THAN = "imageCountMoreThan"
    SINCE_IMAGE_PUSHED = "sinceImagePushed"
    SINCE_IMAGE_PULLED = "sinceImagePulled"
    SINCE_IMAGE_TRANSITIONED = "sinceImageTransitioned"


class ActionType(StrEnum):
    EXPIRE = "expire"
    TRANSITION = "transition"


COUNT_UNIT_DAYS = "days"


@dataclass(frozen=True, slots=True)
class Selection:
    """Which images a rule looks at (tags, storage class) and its count criterion.

    At most one of ``tag_prefixes`` and ``tag_patterns`` is non-empty, and only for ``TAGGED``.
    ``count_unit`` is ``"days"`` for the ``since*`` count types and ``None`` otherwise.
    """

    tag_status: TagStatus
    count_type: CountType
    count_number: int
    count_unit: str | None = None
    tag_prefixes: tuple[str, ...] = ()
    tag_patterns: tuple[str, ...] = ()
    storage_class: StorageClass = StorageClass.STANDARD


@dataclass(frozen=True, slots=True)
class RuleAction:
    """What a rule does: expire, or transition to ``target_storage_class`` (always ARCHIVE)."""

    type: ActionType
    target_storage_class: StorageClass | None = None


EXPIRE = RuleAction(ActionType.EXPIRE)
TRANSITION_TO_ARCHIVE = RuleAction(ActionType.TRANSITION, StorageClass.ARCHIVE)


@dataclass(frozen=True, slots=True)
class Rule:
    priority: int
    selection: Selection
    action: RuleAction
    description: str | None = None


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    """A validated policy; ``rules`` are sorted by ascending priority (order of application)."""

    rules: tuple[Rule, ...]


class Candidate(NamedTuple):
    """One image of the repository, as the evaluator sees it.

    ``archived_at`` is when an ``ARCHIVE`` image was archived (ECR's ``lastArchivedAt``);
    ``referenced_by_index`` is true for a manifest that an index in the repository lists.
    A named tuple rather than a frozen dataclass: an evaluation builds one per image, up to
    100,000 of them, and a tuple is built several times faster.
    """

    digest: Digest
    pushed_at: datetime
    tags: frozenset[str] = frozenset()
    last_pulled_at: datetime | None = None
    storage_class: StorageClass = StorageClass.STANDARD
    archived_at: datetime | None = None
    referenced_by_index: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """The rule of priority ``rule_priority`` acts on the image ``digest`` with ``action``."""

    digest: Digest
    action: RuleAction
    rule_priority: int


# -- matching ------------------------------------------------------------------------------


def tags_match(selection: Selection, tags: Collection[str]) -> bool:
    """True when an image carrying ``tags`` satisfies the tag part of ``selection`` (§5.3).

    ``TAGGED`` needs at least one tag, every prefix a prefix of some tag and every pattern
    matching some whole tag; ``UNTAGGED`` needs none; ``ANY`` takes every image.
    """
    status = selection.tag_status
    if status is TagStatus.ANY:
        return True
    if status is TagStatus.UNTAGGED:
        return not tags
    if not tags:
        return False
    return all(any(t.startswith(p) for t in tags) for p in selection.tag_prefixes) and all(
        any(wildcard_matches(p, t) for t in tags) for p in selection.tag_patterns
    )


def selects(selection: Selection, image: Candidate) -> bool:
    """True when ``selection`` picks ``image``: same storage class, and its tags match."""
    return image.storage_class is selection.storage_class and tags_match(selection, image.tags)


# -- evaluation ----------------------------------------------------------------------------


def evaluate(policy: LifecyclePolicy, images: Sequence[Candidate], now: datetime) -> list[Decision]:
    """The actions ``policy`` takes on ``images`` at ``now`` (algorithm: module docstring).

    Promises: at most one decision per digest; a decision's rule selects the image and no
    higher-priority rule does; no decision for an index child; the result depends only on the
    arguments (not on the order of ``images``) and is sorted by (rule priority, digest).
    ``now`` and the candidates' times must all be timezone-aware (or all naive). Images must
    have distinct digests; what happens otherwise is undefined.
    """
    # Sorted once, newest first (ties: the greater digest is the newer). Every selection
    # below filters this list, so it keeps the order imageCountMoreThan needs without a sort
    # per rule; positions in it stand for the images in ``claimed``.
    keyed = sorted(((i.pushed_at, str(i.digest), i) for i in images), reverse=True)
    newest_first = [image for _, _, image in keyed]
    digest_text = [text for _, text, _ in keyed]
    claimed = bytearray(len(newest_first))
    decisions: list[Decision] = []
    for rule in sorted(policy.rules, key=lambda r: r.priority):
        selection = rule.selection
        storage_class = selection.storage_class
        tags_pass = _tag_test(selection)
        selected = [
            position
            for position, image in enumerate(newest_first)
            if image.storage_class is storage_class and (tags_pass is None or tags_pass(image.tags))
        ]
        acted = [
            position
            for position in _candidates(selection, selected, newest_first, now)
            if not claimed[position] and not newest_first[position].referenced_by_index
        ]
        acted.sort(key=digest_text.__getitem__)
        decisions += (
            Decision(newest_first[position].digest, rule.action, rule.priority)
            for position in acted
        )
        for position in selected:
            claimed[position] = 1
    return decisions


def _tag_test(selection: Selection) -> Callable[[frozenset[str]], bool] | None:
    """:func:`tags_match` for one selection, specialised for speed (it runs once per image and
    rule); None when every image passes."""
    status = selection.tag_status
    if status is TagStatus.ANY:
        return None
    if status is TagStatus.UNTAGGED:
        return lambda tags: not tags
    prefixes = selection.tag_prefixes
    patterns = [star_wildcard(pattern) for pattern in selection.tag_patterns]

    def tagged(tags: frozenset[str]) -> bool:
        return (
            bool(tags)
            and all(any(t.startswith(p) for t in tags) for p in prefixes)
            and all(any(w.matches(t) for t in tags) for w in patterns)
        )

    return tagged


def _candidates(
    selection: Selection, selected: list[int], images: list[Candidate], now: datetime
) -> list[int]:
    """The positions in ``selected`` (of ``images``, newest first) that the count criterion
    would act on."""
    count_type = selection.count_type
    n = selection.count_number
    if count_type is CountType.IMAGE_COUNT_MORE_THAN:
        return selected[n:]
    # Age in whole days (floored) over n: the time is before now - (n + 1) days.
    if count_type is CountType.SINCE_IMAGE_TRANSITIONED:
        n = max(n, ARCHIVE_MINIMUM_DAYS)
    cutoff = now - timedelta(days=n + 1)
    if count_type is CountType.SINCE_IMAGE_PUSHED:
        return [p for p in selected if images[p].pushed_at <= cutoff]
    if count_type is CountType.SINCE_IMAGE_PULLED:
        return [p for p in selected if (images[p].last_pulled_at or images[p].pushed_at) <= cutoff]
    return [p for p in selected if (images[p].archived_at or images[p].pushed_at) <= cutoff]


# -- parsing and validation ----------------------------------------------------------------

_RULE_REQUIRED = ("action", "rulePriority", "selection")
_RULE_ALLOWED = frozenset({*_RULE_REQUIRED, "description"})
_SELECTION_REQUIRED = ("countNumber", "countType", "tagStatus")
_SELECTION_ALLOWED = frozenset(
    {*_SELECTION_REQUIRED, "countUnit", "storageClass", "tagPatternList", "tagPrefixList"}
)
_SINCE = frozenset(
    {CountType.SINCE_IMAGE_PUSHED, CountType.SINCE_IMAGE_PULLED, CountType.SINCE_IMAGE_TRANSITIONED}
)


def parse_lifecycle_policy(text: str) -> LifecyclePolicy:
    """Parse ``text`` exactly as PutLifecyclePolicy would accept it (checks: module docstring).

    Raises :class:`LifecyclePolicyInvalid` with ECR's message for the first rule broken.
    """
    if len(text) < MIN_TEXT_LENGTH:
        _fail(f"string is too short (length: {len(text)}, required minimum: {MIN_TEXT_LENGTH})")
    if len(text) > MAX_TEXT_LENGTH:
        _fail(f"string is too long (length: {len(text)}, maximum allowed: {MAX_TEXT_LENGTH})")
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than any policy
        _fail("Could not map policyString into LifecyclePolicy.")
    root = _object(document)
    _properties(root, required=("rules",), allowed=frozenset({"rules"}))
    raw_rules = _array(root["rules"])
    if not raw_rules:
        _fail("array is too short: must have at least 1 elements but instance has 0 elements")
    if len(raw_rules) > MAX_RULES:
        _fail(
            f"array is too long: must have at most {MAX_RULES} elements "
            f"but instance has {len(raw_rules)} elements"
        )
    rules = [_rule(raw) for raw in raw_rules]
    _check_across_rules(rules)
    return LifecyclePolicy(tuple(sorted(rules, key=lambda r: r.priority)))


def _rule(raw: object) -> Rule:
    obj = _object(raw)
    _properties(obj, required=_RULE_REQUIRED, allowed=_RULE_ALLOWED)
    priority = _integer(obj["rulePriority"], minimum=1)
    description = None
    if "description" in obj:
        description = _string(obj["description"])
    selection = _selection(obj["selection"])
    action = _action(obj["action"])
    if selection.count_type is CountType.SINCE_IMAGE_TRANSITIONED and (
        action.type is not ActionType.EXPIRE
    ):
        _fail("countType sinceImageTransitioned can only be used with action type expire")
    return Rule(priority, selection, action, description)


def _selection(raw: object) -> Selection:
    obj = _object(raw)
    _properties(obj, required=_SELECTION_REQUIRED, allowed=_SELECTION_ALLOWED)
    tag_status = _enum(TagStatus, obj["tagStatus"])
    patterns = _string_list(obj["tagPatternList"]) if "tagPatternList" in obj else None
    prefixes = _string_list(obj["tagPrefixList"]) if "tagPrefixList" in obj else None
    storage_class = StorageClass.STANDARD
    if "storageClass" in obj:
        storage_class = _enum(StorageClass, obj["storageClass"])
    count_type = _enum(CountType, obj["countType"])
    count_unit = None
    if "countUnit" in obj:
        count_unit = _enum_value(obj["countUnit"], (COUNT_UNIT_DAYS,))
    count_number = _integer(obj["countNumber"], minimum=1)

    if tag_status is TagStatus.TAGGED:
        if (patterns is None) == (prefixes is None):
            _fail("tagStatus tagged requires exactly one of tagPatternList and tagPrefixList")
    elif patterns is not None or prefixes is not None:
        _fail(f"tagPatternList and tagPrefixList are not allowed with tagStatus {tag_status}")
    for pattern in patterns or ():
        if pattern.count("*") > MAX_WILDCARDS_PER_PATTERN:
            _fail(
                f'tag pattern "{pattern}" has more than {MAX_WILDCARDS_PER_PATTERN} wildcards (*)'
            )
    if count_type in _SINCE:
        if count_unit is None:
            _fail('object has missing required properties (["countUnit"])')
    elif count_unit is not None:
        _fail('object instance has properties which are not allowed by the schema: (["countUnit"])')
    archive_count = count_type is CountType.SINCE_IMAGE_TRANSITIONED
    if archive_count and storage_class is not StorageClass.ARCHIVE:
        _fail("countType sinceImageTransitioned requires storageClass archive")
    if storage_class is StorageClass.ARCHIVE and not archive_count:
        _fail("storageClass archive can only be used with countType sinceImageTransitioned")
    return Selection(
        tag_status=tag_status,
        count_type=count_type,
        count_number=count_number,
        count_unit=count_unit,
        tag_prefixes=tuple(prefixes or ()),
        tag_patterns=tuple(patterns or ()),
        storage_class=storage_class,
    )


def _action(raw: object) -> RuleAction:
    obj = _object(raw)
    _properties(obj, required=("type",), allowed=frozenset({"type", "targetStorageClass"}))
    action_type = _enum(ActionType, obj["type"])
    if action_type is ActionType.EXPIRE:
        if "targetStorageClass" in obj:
            _fail(
                "object instance has properties which are not allowed by the schema: "
                '(["targetStorageClass"])'
            )
        return EXPIRE
    if "targetStorageClass" not in obj:
        _fail('object has missing required properties (["targetStorageClass"])')
    # Archive is the only class a rule can move images to (ECR has no "transition to standard").
    _enum_value(obj["targetStorageClass"], (StorageClass.ARCHIVE.value,))
    return TRANSITION_TO_ARCHIVE


def _check_across_rules(rules: list[Rule]) -> None:
    seen: set[int] = set()
    for rule in rules:
        if rule.priority in seen:
            _fail(f"rulePriority {rule.priority} is used by more than one rule")
        seen.add(rule.priority)
    # AWS's own examples pair an any/standard rule with an any/archive rule of higher
    # priority, so "any is last" and the uniqueness checks hold per storage class (§5.2).
    for storage_class in StorageClass:
        same_class = sorted(
            (r for r in rules if r.selection.storage_class is storage_class),
            key=lambda r: r.priority,
        )
        for rule in same_class[:-1]:
            if rule.selection.tag_status is TagStatus.ANY:
                _fail(
                    f"rule {rule.priority} with tagStatus any must have the highest "
                    f"rulePriority among the rules for storageClass {storage_class}"
                )
        untagged = [r for r in same_class if r.selection.tag_status is TagStatus.UNTAGGED]
        if len(untagged) > 1:
            _fail(
                f"only one rule may select untagged images for storageClass {storage_class} "
                f"(rules {', '.join(str(r.priority) for r in untagged)})"
            )
        owner: dict[str, int] = {}
        for rule in same_class:
            for prefix in dict.fromkeys(rule.selection.tag_prefixes):
                if prefix in owner:
                    _fail(
                        f'tag prefix "{prefix}" is used by rules {owner[prefix]} and '
                        f"{rule.priority}; tag prefixes must be unique across rules"
                    )
                owner[prefix] = rule.priority


# -- JSON-schema-style checks, worded like the validator ECR uses --------------------------


def _fail(detail: str) -> NoReturn:
    raise LifecyclePolicyInvalid(f"{_PREFIX}{detail}'")


def _reject_constant(name: str) -> object:
    # NaN and Infinity are not JSON; Python's parser accepts them unless told otherwise.
    raise ValueError(name)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _wrong_type(value: object, allowed: str) -> NoReturn:
    _fail(
        f"instance type ({_json_type(value)}) does not match any allowed primitive type "
        f'(allowed: ["{allowed}"])'
    )


def _json_list(names: Sequence[str]) -> str:
    return json.dumps(sorted(names), separators=(",", ":"))


def _object(value: object) -> Mapping[str, object]:
    if not isinstance(value, dict):
        _wrong_type(value, "object")
    return value


def _properties(
    obj: Mapping[str, object], *, required: Sequence[str], allowed: Collection[str]
) -> None:
    missing = [name for name in required if name not in obj]
    if missing:
        _fail(f"object has missing required properties ({_json_list(missing)})")
    unknown = [name for name in obj if name not in allowed]
    if unknown:
        _fail(
            "object instance has properties which are not allowed by the schema: "
            f"({_json_list(unknown)})"
        )


def _array(value: object) -> list[object]:
    if not isinstance(value, list):
        _wrong_type(value, "array")
    return value


def _string(value: object) -> str:
    if not isinstance(value, str):
        _wrong_type(value, "string")
    return value


def _integer(value: object, *, minimum: int) -> int:
    # bool is an int in Python but not in JSON.
    if isinstance(value, bool) or not isinstance(value, int):
        _wrong_type(value, "integer")
    if value < minimum:
        _fail(
            "numeric instance is lower than the required minimum "
            f"(minimum: {minimum}, found: {value})"
        )
    return value


def _string_list(value: object) -> list[str]:
    items = _array(value)
    if not items:
        _fail("array is too short: must have at least 1 elements but instance has 0 elements")
    strings = [_string(item) for item in items]
    for s in strings:
        if not s:
            _fail('string "" is too short (length: 0, required minimum: 1)')
    return strings


def _enum_value(value: object, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        _fail(
            f"instance value ({json.dumps(value)}) not found in enum "
            f"(possible values: {json.dumps(list(allowed), separators=(',', ':'))})"
        )
    return value


def _enum(kind: type[_E], value: object) -> _E:
    return kind(_enum_value(value, [member.value for member in kind]))
