"""Wildcards and policy variables, shared by the policy grammar and the condition operators.

A *pattern* is a policy string that may hold ``*`` (any run of characters, ``/`` and ``:``
included) and ``?`` (exactly one character), and, in ``2012-10-17`` policies, policy variables
``${aws:username}``. A variable may carry a default (``${aws:username, 'nobody'}``); the escapes
``${*}``, ``${?}`` and ``${$}`` stand for the literal characters. Text that comes from a variable
is always literal: a user named ``a*`` does not become a wildcard.

The *variables* mapping has lowercase condition-key names and tuples of values, the shape that
:func:`moorage.iam.conditions.normalise_context` produces. ``None`` means "do not substitute"
(``2008-10-17`` policies, where ``${...}`` is plain text).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from moorage.domain.wildcards import Wildcard, glob_matches

Variables = Mapping[str, tuple[str, ...]]

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_ESCAPES = frozenset({"*", "?", "$"})


def _resolve(expression: str, variables: Variables) -> str | None:
    """The value of one ``${...}`` body, or ``None`` when it has no single value nor default."""
    if expression in _ESCAPES:
        return expression
    name, has_default, default = expression.partition(",")
    values = variables.get(name.strip().lower())
    if values is not None and len(values) == 1:
        return values[0]
    default = default.strip()
    if has_default and len(default) >= 2 and default[0] == default[-1] == "'":
        return default[1:-1]
    return None


def segments(pattern: str, variables: Variables | None) -> list[tuple[str, bool]] | None:
    """Split *pattern* into ``(text, literal)`` pieces with variables substituted.

    ``literal`` is true for text that came from a variable (its ``*`` and ``?`` match only
    themselves). Returns ``None`` when a variable cannot be resolved: AWS then treats the
    element as not matching.
    """
    if variables is None:
        return [(pattern, False)]
    pieces: list[tuple[str, bool]] = []
    position = 0
    for match in _VARIABLE.finditer(pattern):
        value = _resolve(match.group(1), variables)
        if value is None:
            return None
        pieces.append((pattern[position : match.start()], False))
        pieces.append((value, True))
        position = match.end()
    pieces.append((pattern[position:], False))
    return pieces


def expand(pattern: str, variables: Variables | None) -> str | None:
    """*pattern* with its variables substituted (no wildcard meaning), or ``None`` if unresolved."""
    pieces = segments(pattern, variables)
    return None if pieces is None else "".join(text for text, _ in pieces)


def compile_wildcard(
    pattern: str, variables: Variables | None = None, *, ignore_case: bool = False
) -> Wildcard | None:
    """The compiled pattern with its variables substituted, or ``None`` if unresolved."""
    pieces = segments(pattern, variables)
    if pieces is None:
        return None
    return Wildcard.from_pieces(pieces, ignore_case=ignore_case)


def wildcard_match(
    pattern: str,
    candidate: str,
    variables: Variables | None = None,
    *,
    ignore_case: bool = False,
) -> bool:
    """Whether *candidate* matches the whole of *pattern* (``*``/``?`` wildcards, variables).

    Costs at most ``len(pattern) * len(candidate)`` steps, whatever the pattern
    (:mod:`moorage.domain.wildcards`).
    """
    if "$" in pattern and variables is not None:  # may hold ${...}: substitute per request
        wildcard = compile_wildcard(pattern, variables, ignore_case=ignore_case)
        return wildcard is not None and wildcard.matches(candidate)
    # Every request is decided against the same few patterns: match them without rebuilding.
    if pattern == "*":
        return True
    if "*" not in pattern and "?" not in pattern:
        if ignore_case:
            return pattern.lower() == candidate.lower()
        return pattern == candidate
    return glob_matches(pattern, candidate, ignore_case=ignore_case)
