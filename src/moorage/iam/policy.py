"""The IAM policy engine: parse policy documents and decide requests, as AWS does.

Pipeline: ``parse_policy`` (JSON, then grammar) -> ``Policy`` -> ``evaluate`` (statements that
apply -> explicit deny wins -> same-account OR / cross-account AND) -> ``Decision``.

Grammar: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html
Evaluation: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html

Pure: no I/O. Only identity policies and one resource policy (a repository or registry policy)
are modelled; SCPs, permission boundaries and session policies are not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Literal

from moorage.iam.conditions import (
    Condition,
    Context,
    evaluate_conditions,
    normalise_context,
    parse_conditions,
)
from moorage.iam.patterns import Variables, wildcard_match

PolicyKind = Literal["identity", "resource"]

VERSIONS = ("2012-10-17", "2008-10-17")
# Policy variables exist only from 2012-10-17 on; in 2008-10-17 "${...}" is literal text.
_VARIABLES_VERSION = "2012-10-17"

_POLICY_KEYS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_PRINCIPAL_TYPES = frozenset({"AWS", "Service", "Federated"})
_ACTION = re.compile(r"\*|[A-Za-z0-9-]+:[A-Za-z0-9*?]+")
_ACCOUNT = re.compile(r"\d{12}")
_IAM_ARN = re.compile(r"arn:[a-z-]+:(iam|sts)::(\d{12}):(.+)")


class PolicyInvalid(Exception):
    """A policy document is not valid JSON or breaks the IAM grammar; ``str()`` says where."""


class Effect(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True)
class Principals:
    """The ``Principal``/``NotPrincipal`` element. ``everyone`` is ``"*"`` or ``{"AWS": "*"}``."""

    everyone: bool = False
    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()


@dataclass(frozen=True)
class Statement:
    """One statement. ``None`` for ``resources``/``principals`` means the element is absent."""

    effect: Effect
    actions: tuple[str, ...]
    actions_negated: bool
    resources: tuple[str, ...] | None = None
    resources_negated: bool = False
    principals: Principals | None = None
    principals_negated: bool = False
    conditions: tuple[Condition, ...] = ()
    sid: str | None = None


@dataclass(frozen=True)
class Policy:
    version: str
    statements: tuple[Statement, ...]
    id: str | None = None

    @property
    def uses_variables(self) -> bool:
        return self.version == _VARIABLES_VERSION


@dataclass(frozen=True)
class AuthorizationRequest:
    """Who asks to do what to which resource, with the request's condition keys.

    ``resource`` is an ARN, or ``"*"`` for actions without resource-level permissions.
    ``aws:PrincipalArn`` and ``aws:PrincipalAccount`` default to the principal's own values.
    """

    principal_arn: str
    principal_account: str
    action: str
    resource: str
    context: Mapping[str, str | list[str]] = field(default_factory=dict)


class Outcome(Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class Decision:
    """The outcome and the Sid of the statement that decided it (``None`` if none or no Sid)."""

    outcome: Outcome
    sid: str | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW


# --- grammar ---------------------------------------------------------------------------------


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise PolicyInvalid(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> object:
    """Python's json accepts NaN and Infinity; JSON (and IAM) do not."""
    raise PolicyInvalid(f"policy is not valid JSON: {name} is not a JSON value")


def _strings(value: object, element: str) -> tuple[str, ...]:
    """A string or a non-empty list of non-empty strings."""
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) and item for item in items):
        raise PolicyInvalid(f"{element} must be a non-empty string or list of strings")
    return tuple(str(item) for item in items)


def _one_of(raw: dict[str, object], name: str, required: bool) -> tuple[object, bool] | None:
    """The value of ``name`` or ``Not<name>`` and whether it was the negated form."""
    negated_name = f"Not{name}"
    if name in raw and negated_name in raw:
        raise PolicyInvalid(f"a statement cannot have both {name} and {negated_name}")
    if name in raw:
        return raw[name], False
    if negated_name in raw:
        return raw[negated_name], True
    if required:
        raise PolicyInvalid(f"a statement needs {name} or {negated_name}")
    return None


def _parse_actions(value: object) -> tuple[str, ...]:
    actions = _strings(value, "Action")
    for action in actions:
        if not _ACTION.fullmatch(action):
            raise PolicyInvalid(f"invalid action {action!r}")
    return actions


def _parse_resources(value: object) -> tuple[str, ...]:
    resources = _strings(value, "Resource")
    for resource in resources:
        if resource != "*" and not resource.startswith("arn:"):
            raise PolicyInvalid(f"invalid resource {resource!r}")
    return resources


def _parse_aws_principal(value: str) -> str:
    if value == "*" or _ACCOUNT.fullmatch(value):
        return value
    if _IAM_ARN.fullmatch(value) and "*" not in value and "?" not in value:
        return value
    raise PolicyInvalid(f"invalid AWS principal {value!r}")


def _parse_principals(value: object) -> Principals:
    if value == "*":
        return Principals(everyone=True)
    if not isinstance(value, dict) or not value:
        raise PolicyInvalid('Principal must be "*" or an object such as {"AWS": ...}')
    unknown = set(value) - _PRINCIPAL_TYPES
    if unknown:
        raise PolicyInvalid(f"unsupported principal type {sorted(unknown)[0]!r}")
    aws = tuple(_parse_aws_principal(v) for v in _optional_strings(value, "AWS"))
    return Principals(
        everyone="*" in aws,
        aws=aws,
        service=_optional_strings(value, "Service"),
        federated=_optional_strings(value, "Federated"),
    )


def _optional_strings(element: dict[str, object], name: str) -> tuple[str, ...]:
    return _strings(element[name], name) if name in element else ()


def _parse_statement(raw: object, kind: PolicyKind, require_resource: bool) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyInvalid("each statement must be an object")
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise PolicyInvalid(f"unknown statement element {sorted(unknown)[0]!r}")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyInvalid("Sid must be a string")
    effect = raw.get("Effect")
    if effect not in (Effect.ALLOW.value, Effect.DENY.value):
        raise PolicyInvalid('Effect must be "Allow" or "Deny"')
    action = _one_of(raw, "Action", required=True)
    assert action is not None  # required=True raises instead of returning None
    resource = _one_of(raw, "Resource", required=require_resource)
    principal = _one_of(raw, "Principal", required=kind == "resource")
    if principal is not None and kind == "identity":
        raise PolicyInvalid("identity policies cannot have Principal or NotPrincipal")
    return Statement(
        effect=Effect(effect),
        actions=_parse_actions(action[0]),
        actions_negated=action[1],
        resources=None if resource is None else _parse_resources(resource[0]),
        resources_negated=resource is not None and resource[1],
        principals=None if principal is None else _parse_principals(principal[0]),
        principals_negated=principal is not None and principal[1],
        conditions=_parse_condition_element(raw),
        sid=sid,
    )


def _parse_condition_element(raw: dict[str, object]) -> tuple[Condition, ...]:
    if "Condition" not in raw:
        return ()
    try:
        return parse_conditions(raw["Condition"])
    except ValueError as error:
        raise PolicyInvalid(str(error)) from error


def parse_policy(text: str, *, kind: PolicyKind, require_resource: bool | None = None) -> Policy:
    """Parse and validate a policy document.

    ``kind="identity"``: no ``Principal``/``NotPrincipal``; ``Resource`` required by default.
    ``kind="resource"``: ``Principal`` or ``NotPrincipal`` required; ``Resource`` optional by
    default (a repository policy applies to its repository). ``require_resource`` overrides the
    default. Raises ``PolicyInvalid`` for bad JSON or grammar. Whether principals exist is not
    checked here.
    """
    try:
        raw = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except ValueError as error:  # JSONDecodeError is a ValueError
        raise PolicyInvalid(f"policy is not valid JSON: {error}") from error
    except RecursionError as error:
        raise PolicyInvalid("policy is nested too deeply") from error
    if not isinstance(raw, dict):
        raise PolicyInvalid("policy must be a JSON object")
    unknown = set(raw) - _POLICY_KEYS
    if unknown:
        raise PolicyInvalid(f"unknown policy element {sorted(unknown)[0]!r}")
    version = raw.get("Version", "2008-10-17")
    if version not in VERSIONS:
        raise PolicyInvalid(f"Version must be one of {', '.join(VERSIONS)}")
    policy_id = raw.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise PolicyInvalid("Id must be a string")
    if "Statement" not in raw:
        raise PolicyInvalid("policy needs a Statement")
    statements = raw["Statement"]
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise PolicyInvalid("Statement must be an object or a non-empty list of objects")
    needs_resource = kind == "identity" if require_resource is None else require_resource
    return Policy(
        version=version,
        statements=tuple(_parse_statement(s, kind, needs_resource) for s in statements),
        id=policy_id,
    )


# --- matching --------------------------------------------------------------------------------


class _PrincipalMatch(Enum):
    """How a resource policy names the caller: not at all, via its account, or directly."""

    NONE = 0
    ACCOUNT = 1
    DIRECT = 2


def _aws_principal_match(entry: str, arn: str, account: str) -> _PrincipalMatch:
    if entry == "*":
        return _PrincipalMatch.DIRECT
    if entry == account or (entry.endswith(f":iam::{account}:root") and _IAM_ARN.fullmatch(entry)):
        return _PrincipalMatch.ACCOUNT
    if entry == arn:
        return _PrincipalMatch.DIRECT
    return _PrincipalMatch.DIRECT if _is_session_of(arn, entry) else _PrincipalMatch.NONE


def _is_session_of(session_arn: str, role_arn: str) -> bool:
    """``arn:p:sts::A:assumed-role/R/S`` is a session of ``arn:p:iam::A:role/<path>/R``."""
    session = _IAM_ARN.fullmatch(session_arn)
    role = _IAM_ARN.fullmatch(role_arn)
    if session is None or role is None or session.group(1) != "sts" or role.group(1) != "iam":
        return False
    session_parts = session.group(3).split("/")
    role_parts = role.group(3).split("/")
    return (
        session.group(2) == role.group(2)
        and len(session_parts) == 3
        and session_parts[0] == "assumed-role"
        and role_parts[0] == "role"
        and role_parts[-1] == session_parts[1]
    )


def _principal_match(principals: Principals, request: AuthorizationRequest) -> _PrincipalMatch:
    if principals.everyone:
        return _PrincipalMatch.DIRECT
    # Service and federated principals are identified by their name in principal_arn.
    if request.principal_arn in principals.service + principals.federated:
        return _PrincipalMatch.DIRECT
    matches = [
        _aws_principal_match(entry, request.principal_arn, request.principal_account)
        for entry in principals.aws
    ]
    return max(matches, key=lambda m: m.value, default=_PrincipalMatch.NONE)


def _statement_principal(statement: Statement, request: AuthorizationRequest) -> _PrincipalMatch:
    """How the statement's Principal/NotPrincipal covers the caller (DIRECT when absent)."""
    if statement.principals is None:
        return _PrincipalMatch.DIRECT
    found = _principal_match(statement.principals, request)
    if statement.principals_negated:
        return _PrincipalMatch.DIRECT if found is _PrincipalMatch.NONE else _PrincipalMatch.NONE
    return found


def _action_matches(statement: Statement, action: str) -> bool:
    found = any(wildcard_match(p, action, ignore_case=True) for p in statement.actions)
    return found != statement.actions_negated


def _resource_matches(statement: Statement, resource: str, variables: Variables | None) -> bool:
    if statement.resources is None:
        return True  # a resource policy without Resource covers the resource it is attached to
    found = any(wildcard_match(p, resource, variables) for p in statement.resources)
    return found != statement.resources_negated


def _request_context(request: AuthorizationRequest) -> dict[str, tuple[str, ...]]:
    context = normalise_context(request.context)
    context.setdefault("aws:principalarn", (request.principal_arn,))
    context.setdefault("aws:principalaccount", (request.principal_account,))
    return context


def _applies(
    statement: Statement,
    request: AuthorizationRequest,
    context: Context,
    variables: Variables | None,
) -> bool:
    return (
        _action_matches(statement, request.action)
        and _resource_matches(statement, request.resource, variables)
        and evaluate_conditions(statement.conditions, context, variables)
    )


@dataclass(frozen=True)
class _Match:
    statement: Statement
    principal: _PrincipalMatch


def _matching_statements(
    policy: Policy, request: AuthorizationRequest, context: Context
) -> list[_Match]:
    variables = context if policy.uses_variables else None
    matches: list[_Match] = []
    for statement in policy.statements:
        principal = _statement_principal(statement, request)
        if principal is not _PrincipalMatch.NONE and _applies(
            statement, request, context, variables
        ):
            matches.append(_Match(statement, principal))
    return matches


def _first(matches: Sequence[_Match], effect: Effect) -> _Match | None:
    return next((m for m in matches if m.statement.effect is effect), None)


def evaluate(
    request: AuthorizationRequest,
    identity_policies: Sequence[Policy],
    resource_policy: Policy | Sequence[Policy] | None,
    resource_account: str,
) -> Decision:
    """Decide *request* against the caller's identity policies and the resource's policy.

    Several resource policies (ECR's repository policy and registry policy) are decided as one:
    their statements are pooled, each read with its own policy's version.

    1. An applicable ``Deny`` in any policy -> ``EXPLICIT_DENY``.
    2. Same account: an ``Allow`` in an identity policy, or a resource-policy ``Allow`` that names
       the caller directly (its ARN, its role, ``"*"``) -> ``ALLOW``. A resource-policy ``Allow``
       that names only the caller's *account* delegates to that account's identity policies, so
       it is not enough on its own (AWS evaluation-logic page, "Cross-account policy evaluation"
       and the note on account principals).
    3. Cross account: both a resource-policy ``Allow`` naming the caller (directly or by account)
       and an identity-policy ``Allow`` -> ``ALLOW``.
    4. Otherwise ``IMPLICIT_DENY``.

    The Sid is that of the first deciding statement (resource policy first when both decide).
    """
    context = _request_context(request)
    identity = [m for p in identity_policies for m in _matching_statements(p, request, context)]
    if resource_policy is None:
        resource_policies: Sequence[Policy] = ()
    elif isinstance(resource_policy, Policy):
        resource_policies = (resource_policy,)
    else:
        resource_policies = resource_policy
    resource = [m for p in resource_policies for m in _matching_statements(p, request, context)]
    deny = _first(resource, Effect.DENY) or _first(identity, Effect.DENY)
    if deny is not None:
        return Decision(Outcome.EXPLICIT_DENY, deny.statement.sid)
    identity_allow = _first(identity, Effect.ALLOW)
    resource_allow = _first(resource, Effect.ALLOW)
    if request.principal_account == resource_account:
        direct = next(
            (
                m
                for m in resource
                if m.statement.effect is Effect.ALLOW and m.principal is _PrincipalMatch.DIRECT
            ),
            None,
        )
        decider = direct or identity_allow
    else:
        decider = resource_allow if identity_allow is not None else None
    if decider is None:
        return Decision(Outcome.IMPLICIT_DENY)
    return Decision(Outcome.ALLOW, decider.statement.sid)
