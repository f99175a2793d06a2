"""``nextToken``: the opaque cursor of ECR's paginated operations.

A token is unpadded urlsafe base64 of compact JSON ``{"k": <scope>, "c": [cursor strings]}``.
The scope names what the token was issued for (the operation, registry, repository, ...);
the cursor is the last key of the page it ends: a repository name for DescribeRepositories,
a digest and a tag for ListImages.

It is not signed: a client that forges one only chooses where its own listing resumes, which
it may do anyway. It is bound to its scope so that a token from another listing is refused
with ECR's error (``InvalidParameterException``) rather than misread.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import TypeVar

from moorage.protocols.aws.errors import INVALID_PARAMETER, ApiError

_MAX_TOKEN_LENGTH = 4096


def encode_token(scope: str, cursor: Sequence[str] | None) -> str | None:
    """The token of the page after ``cursor`` (None when there is none)."""
    if cursor is None:
        return None
    document = json.dumps({"k": scope, "c": list(cursor)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(document.encode("utf-8")).rstrip(b"=").decode("ascii")


def decode_token(scope: str, token: str | None) -> list[str] | None:
    """The cursor in ``token`` (None for None). Raises ApiError InvalidParameterException."""
    if token is None:
        return None
    try:
        if len(token) > _MAX_TOKEN_LENGTH:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        document = json.loads(raw)
        cursor = document["c"]
        if document["k"] != scope or not isinstance(cursor, list):
            raise ValueError("another operation's token")
        if not all(isinstance(part, str) for part in cursor):
            raise ValueError("not a cursor")
    except (ValueError, TypeError, KeyError, RecursionError, binascii.Error):
        raise ApiError(
            INVALID_PARAMETER,
            "Invalid parameter at 'nextToken' failed to satisfy constraint: "
            "'Invalid pagination token'",
        ) from None
    return cursor


T = TypeVar("T")


def offset_page(
    items: Sequence[T], scope: str, token: str | None, limit: int
) -> tuple[Sequence[T], str | None]:
    """One page of a listing read whole (a registry's rules, templates, secrets): the items
    from the offset ``token`` carries, at most ``limit``, and the token of the next page
    (None: the last). Raises ApiError InvalidParameterException for a token of another scope."""
    cursor = decode_token(scope, token)
    start = int(cursor[0]) if cursor and cursor[0].isdigit() else 0
    end = start + limit
    return items[start:end], encode_token(scope, [str(end)]) if end < len(items) else None
