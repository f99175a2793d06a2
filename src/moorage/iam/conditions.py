"""IAM condition operators: parse a ``Condition`` block and evaluate it against a request context.

Semantics (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
and ..._condition-logic-multiple-context-keys-or-values.html):

- operators in one block are ANDed, keys under one operator are ANDed, the values listed for one
  key are ORed; for a negated operator (``StringNotEquals``, ``NotIpAddress``, ...) the context
  value must match *none* of them;
- a key missing from the context makes a condition false, except: ``...IfExists`` (true),
  ``Null`` (that is what it tests), ``ForAllValues:`` (true), and negated operators (true, as the
  AWS page says: "If the policy condition requires that the key is not matched, such as
  StringNotLike or ArnNotLike, and the right key is not present, the condition is true");
- ``ForAnyValue:`` holds when at least one context value satisfies the operator, ``ForAllValues:``
  when every one does; without a prefix a multivalued key behaves like ``ForAnyValue:`` for a
  positive operator and requires that no context value matches for a negated one;
- a context value the operator cannot read (a non-number for ``Numeric*``, a non-date, a non-IP)
  never satisfies it, negated or not.

Condition-key names are case-insensitive (keys are stored lowercase). Operator names are matched
exactly as AWS spells them. Grammar errors raise ``ValueError`` with a message;
:mod:`moorage.iam.policy` turns them into ``PolicyInvalid``.
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from moorage.iam.patterns import Variables, expand, wildcard_match

Context = Mapping[str, tuple[str, ...]]


class Qualifier(StrEnum):
    """The set-operator prefix of a condition operator."""

    FOR_ANY_VALUE = "ForAnyValue"
    FOR_ALL_VALUES = "ForAllValues"


# A matcher compares one context value with one policy value; None means the context value is
# unreadable for this operator (see the module docstring).
Matcher = Callable[[str, str, Variables | None], bool | None]
Validator = Callable[[str], None]


@dataclass(frozen=True)
class _Operator:
    matcher: Matcher
    negated: bool
    validate: Validator


@dataclass(frozen=True)
class Condition:
    """One ``operator: {key: values}`` pair of a ``Condition`` block.

    ``key`` is lowercase; ``values`` are strings (JSON booleans and numbers are converted).
    """

    operator: str
    base: str
    qualifier: Qualifier | None
    if_exists: bool
    key: str
    values: tuple[str, ...]


def normalise_context(context: Mapping[str, str | list[str]]) -> dict[str, tuple[str, ...]]:
    """Lowercase the key names and turn every value into a tuple of strings."""
    return {
        key.lower(): (value,) if isinstance(value, str) else tuple(value)
        for key, value in context.items()
    }


# --- value parsing -------------------------------------------------------------------------

_EPOCH = re.compile(r"-?\d+(\.\d+)?")


def _parse_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _parse_date(text: str) -> datetime | None:
    """ISO 8601 (date, or date and time; naive means UTC) or epoch seconds."""
    try:
        if _EPOCH.fullmatch(text):
            return datetime.fromtimestamp(float(text), tz=UTC)
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


# --- matchers --------------------------------------------------------------------------------


def _string_equals(value: str, pattern: str, variables: Variables | None) -> bool | None:
    return expand(pattern, variables) == value


def _string_equals_ignore_case(value: str, pattern: str, variables: Variables | None) -> bool:
    expanded = expand(pattern, variables)
    return expanded is not None and expanded.casefold() == value.casefold()


def _string_like(value: str, pattern: str, variables: Variables | None) -> bool | None:
    return wildcard_match(pattern, value, variables)


def _arn_like(value: str, pattern: str, variables: Variables | None) -> bool | None:
    """ArnEquals and ArnLike: the six colon-separated parts match one by one, with wildcards."""
    value_parts = value.split(":", 5)
    pattern_parts = pattern.split(":", 5)
    if len(value_parts) != 6 or len(pattern_parts) != 6:
        return False
    return all(
        wildcard_match(p, v, variables) for p, v in zip(pattern_parts, value_parts, strict=True)
    )


def _numeric(compare: Callable[[float, float], bool]) -> Matcher:
    def matcher(value: str, pattern: str, variables: Variables | None) -> bool | None:
        number, bound = _parse_number(value), _parse_number(pattern)
        if number is None or bound is None:
            return None
        return compare(number, bound)

    return matcher


def _date(compare: Callable[[datetime, datetime], bool]) -> Matcher:
    def matcher(value: str, pattern: str, variables: Variables | None) -> bool | None:
        moment, bound = _parse_date(value), _parse_date(pattern)
        if moment is None or bound is None:
            return None
        return compare(moment, bound)

    return matcher


def _bool(value: str, pattern: str, variables: Variables | None) -> bool | None:
    if value.lower() not in ("true", "false"):
        return None
    return value.lower() == pattern.lower()


def _ip_address(value: str, pattern: str, variables: Variables | None) -> bool | None:
    address, network = _parse_address(value), _parse_network(pattern)
    if address is None or network is None:
        return None
    # ipaddress answers False, not an error, when one side is IPv4 and the other IPv6.
    return address in network


# --- validators of policy values -------------------------------------------------------------


def _any_string(text: str) -> None:
    return None


def _require(parse: Callable[[str], object | None], what: str) -> Validator:
    def validate(text: str) -> None:
        if parse(text) is None:
            raise ValueError(f"condition value {text!r} is not {what}")

    return validate


def _bool_value(text: str) -> None:
    if text.lower() not in ("true", "false"):
        raise ValueError(f"condition value {text!r} is not true or false")


def _operator_family(
    names: Mapping[str, tuple[Matcher, bool]], validate: Validator
) -> dict[str, _Operator]:
    return {
        name: _Operator(matcher, negated, validate) for name, (matcher, negated) in names.items()
    }


def _comparisons(
    prefix: str, build: Callable[[Callable[..., bool]], Matcher]
) -> dict[str, tuple[Matcher, bool]]:
    return {
        f"{prefix}Equals": (build(operator.eq), False),
        f"{prefix}NotEquals": (build(operator.eq), True),
        f"{prefix}LessThan": (build(operator.lt), False),
        f"{prefix}LessThanEquals": (build(operator.le), False),
        f"{prefix}GreaterThan": (build(operator.gt), False),
        f"{prefix}GreaterThanEquals": (build(operator.ge), False),
    }


_OPERATORS: dict[str, _Operator] = {
    **_operator_family(
        {
            "StringEquals": (_string_equals, False),
            "StringNotEquals": (_string_equals, True),
            "StringEqualsIgnoreCase": (_string_equals_ignore_case, False),
            "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True),
            "StringLike": (_string_like, False),
            "StringNotLike": (_string_like, True),
            "BinaryEquals": (_string_equals, False),
            "ArnEquals": (_arn_like, False),
            "ArnLike": (_arn_like, False),
            "ArnNotEquals": (_arn_like, True),
            "ArnNotLike": (_arn_like, True),
        },
        _any_string,
    ),
    **_operator_family(_comparisons("Numeric", _numeric), _require(_parse_number, "a number")),
    **_operator_family(_comparisons("Date", _date), _require(_parse_date, "a date")),
    **_operator_family({"Bool": (_bool, False)}, _bool_value),
    **_operator_family(
        {"IpAddress": (_ip_address, False), "NotIpAddress": (_ip_address, True)},
        _require(_parse_network, "an IP address or CIDR block"),
    ),
}

_NULL = "Null"
_IF_EXISTS = "IfExists"


# --- grammar ---------------------------------------------------------------------------------


def _split_operator(name: str) -> tuple[Qualifier | None, str, bool]:
    """``ForAnyValue:StringLikeIfExists`` -> (FOR_ANY_VALUE, "StringLike", True)."""
    qualifier: Qualifier | None = None
    prefix, colon, rest = name.partition(":")
    if colon:
        try:
            qualifier = Qualifier(prefix)
        except ValueError:
            raise ValueError(f"unknown condition set operator {prefix!r}") from None
        name = rest
    if_exists = name.endswith(_IF_EXISTS) and name != _IF_EXISTS
    base = name.removesuffix(_IF_EXISTS) if if_exists else name
    if base == _NULL:
        if qualifier is not None or if_exists:
            raise ValueError("the Null condition operator takes no prefix nor IfExists")
    elif base not in _OPERATORS:
        raise ValueError(f"unknown condition operator {name!r}")
    return qualifier, base, if_exists


def _scalar(value: object) -> str:
    """A JSON scalar as IAM reads it: booleans as ``true``/``false``, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    raise ValueError("condition values must be strings, numbers or booleans")


def _values(raw: object) -> tuple[str, ...]:
    if isinstance(raw, list):
        if not raw:
            raise ValueError("a condition key needs at least one value")
        return tuple(_scalar(item) for item in raw)
    return (_scalar(raw),)


def parse_conditions(block: object) -> tuple[Condition, ...]:
    """Parse a statement's ``Condition`` element.

    Raises ``ValueError`` for anything that is not ``{operator: {key: value | [values]}}`` with
    a known operator and values of the operator's type.
    """
    if not isinstance(block, dict) or not block:
        raise ValueError("Condition must be a non-empty object")
    conditions: list[Condition] = []
    for name, keys in block.items():
        qualifier, base, if_exists = _split_operator(name)
        if not isinstance(keys, dict) or not keys:
            raise ValueError(f"condition operator {name!r} needs an object of keys")
        validate = _bool_value if base == _NULL else _OPERATORS[base].validate
        for key, raw in keys.items():
            if not key:
                raise ValueError("condition keys must be non-empty")
            values = _values(raw)
            for value in values:
                validate(value)
            conditions.append(Condition(name, base, qualifier, if_exists, key.lower(), values))
    return tuple(conditions)


# --- evaluation ------------------------------------------------------------------------------


def _hit(
    op: _Operator, value: str, policy_values: tuple[str, ...], variables: Variables | None
) -> bool | None:
    """Whether one context value matches any policy value (ignoring negation)."""
    results = [op.matcher(value, pattern, variables) for pattern in policy_values]
    if any(result is None for result in results):
        return None
    return any(results)


def _satisfies(op: _Operator, hit: bool | None) -> bool:
    return hit is not None and hit != op.negated


def evaluate_condition(condition: Condition, context: Context, variables: Variables | None) -> bool:
    """Whether *condition* holds for the (normalised) *context*; see the module docstring."""
    present = context.get(condition.key, ())
    if condition.base == _NULL:
        return any((value.lower() == "true") != bool(present) for value in condition.values)
    op = _OPERATORS[condition.base]
    if not present:
        if condition.if_exists or condition.qualifier is Qualifier.FOR_ALL_VALUES:
            return True
        if condition.qualifier is Qualifier.FOR_ANY_VALUE:
            return False
        return op.negated
    hits = [_hit(op, value, condition.values, variables) for value in present]
    if condition.qualifier is Qualifier.FOR_ALL_VALUES:
        return all(_satisfies(op, hit) for hit in hits)
    if condition.qualifier is Qualifier.FOR_ANY_VALUE:
        return any(_satisfies(op, hit) for hit in hits)
    if op.negated:
        return all(hit is False for hit in hits)
    return any(hit is True for hit in hits)


def evaluate_conditions(
    conditions: tuple[Condition, ...], context: Context, variables: Variables | None
) -> bool:
    """All conditions hold (the empty block holds)."""
    return all(evaluate_condition(c, context, variables) for c in conditions)
