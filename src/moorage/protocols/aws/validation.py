"""Constraint failures in the input, and the error ECR answers for them.

ECR answers in one of two forms, chosen per operation by the errors it models:

- operations that model ``InvalidParameterException`` (all of ECR's but
  ``DeleteSigningConfiguration``, in botocore 1.43) answer it, naming the **first** failure, in
  the form the live service uses (observed, see ``ecr-behaviour.md`` §1.1)::

      Invalid parameter at 'repositoryName' failed to satisfy constraint:
      'must satisfy regular expression '<regex>''

- any other operation answers ``ValidationException`` in the AWS (Coral) form, counting and
  listing **every** failure::

      2 validation errors detected: Value 'x' at 'repositoryName' failed to satisfy
      constraint: Member must have length greater than or equal to 2; Value null at ...

Why not always one form: SDKs and scripts match on the error code, and each operation's code is
the one its model promises.

Member paths are written as AWS writes them: top-level members by name, list items 1-based
followed by ``member`` (``imageIds.2.member.imageTag``), structure members joined with ``.``.
Map entries (no ECR input has one) are ``<map>.<key>``: ours. Values in the
``ValidationException`` form are rendered Java-style (``'text'``, ``5``, ``[a, b]``, ``null``),
cut at 200 characters so a 4 MiB manifest does not come back in an error; AWS does not cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from moorage.protocols.aws.errors import INVALID_PARAMETER, VALIDATION_EXCEPTION, ApiError

_MAX_RENDERED = 200


@dataclass(frozen=True, slots=True)
class Violation:
    """One failed constraint: where, on what value (None for a missing one), and which.

    ``constraint`` is the text of the ``ValidationException`` form; ``parameter_text`` the text
    of the ``InvalidParameterException`` form when it differs (only patterns differ).
    """

    path: str
    value: object
    constraint: str
    parameter_text: str | None = None

    @property
    def invalid_parameter_text(self) -> str:
        return self.parameter_text if self.parameter_text is not None else self.constraint


def not_null(path: str) -> Violation:
    return Violation(path, None, "Member must not be null")


def length_at_least(path: str, value: object, minimum: int) -> Violation:
    return Violation(path, value, f"Member must have length greater than or equal to {minimum}")


def length_at_most(path: str, value: object, maximum: int) -> Violation:
    return Violation(path, value, f"Member must have length less than or equal to {maximum}")


def value_at_least(path: str, value: object, minimum: float) -> Violation:
    return Violation(path, value, f"Member must have value greater than or equal to {minimum}")


def value_at_most(path: str, value: object, maximum: float) -> Violation:
    return Violation(path, value, f"Member must have value less than or equal to {maximum}")


def pattern(path: str, value: object, regex: str) -> Violation:
    return Violation(
        path,
        value,
        f"Member must satisfy regular expression pattern: {regex}",
        f"must satisfy regular expression '{regex}'",
    )


def enum(path: str, value: object, allowed: Iterable[str]) -> Violation:
    return Violation(path, value, f"Member must satisfy enum value set: [{', '.join(allowed)}]")


def validation_error(modelled_errors: Iterable[str], violations: Sequence[Violation]) -> ApiError:
    """The ApiError for ``violations`` (at least one), in the form the operation models."""
    if not violations:
        raise ValueError("no violations to report")
    if INVALID_PARAMETER in modelled_errors:
        first = violations[0]
        return ApiError(
            INVALID_PARAMETER,
            f"Invalid parameter at '{first.path}' failed to satisfy constraint: "
            f"'{first.invalid_parameter_text}'",
        )
    count = len(violations)
    listed = "; ".join(
        f"Value {render(v.value)} at '{v.path}' failed to satisfy constraint: {v.constraint}"
        for v in violations
    )
    plural = "error" if count == 1 else "errors"
    return ApiError(VALIDATION_EXCEPTION, f"{count} validation {plural} detected: {listed}")


def render(value: object) -> str:
    """A value as AWS prints it in a ``ValidationException``: quoted, Java-style, cut short."""
    text = _java(value)
    if len(text) > _MAX_RENDERED:
        text = text[:_MAX_RENDERED] + "..."
    return "null" if value is None else f"'{text}'"


def _java(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_java(k)}={_java(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_java(v) for v in value) + "]"
    return str(value)
