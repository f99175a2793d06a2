"""Repository-name and tag grammar, and create-on-push patterns.

Repository names follow ECR's model regex (2-256 characters, lowercase, ``/``-separated
components); see shared reference §1.1. ECR's grammar is stricter than the OCI one
(no uppercase), so every ECR name is also a valid OCI name. Tags follow the OCI grammar
``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``, which is what every client sends on ``/v2/``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

from moorage.domain.errors import InvalidName, InvalidTag

REPOSITORY_NAME_PATTERN = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*"
_REPOSITORY_NAME = re.compile(REPOSITORY_NAME_PATTERN)
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")

MIN_NAME_LENGTH = 2
MAX_NAME_LENGTH = 256


class RepositoryName(str):
    """A repository name that satisfies ECR's grammar."""

    __slots__ = ()

    def __new__(cls, text: str) -> RepositoryName:
        if not MIN_NAME_LENGTH <= len(text) <= MAX_NAME_LENGTH:
            raise InvalidName(
                f"repository name must be {MIN_NAME_LENGTH} to {MAX_NAME_LENGTH} characters",
                detail={"name": text[:MAX_NAME_LENGTH]},
            )
        if not _REPOSITORY_NAME.fullmatch(text):
            raise InvalidName(
                f"repository name must satisfy regular expression '{REPOSITORY_NAME_PATTERN}'",
                detail={"name": text},
            )
        return super().__new__(cls, text)


class Tag(str):
    """A tag that satisfies the OCI tag grammar."""

    __slots__ = ()

    def __new__(cls, text: str) -> Tag:
        if not _TAG.fullmatch(text):
            raise InvalidTag(
                "tag must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", detail={"tag": text[:128]}
            )
        return super().__new__(cls, text)


def matches_any(name: str, patterns: Iterable[str]) -> bool:
    """True when ``name`` matches one of the shell-style ``patterns`` (``*`` matches ``/`` too)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
