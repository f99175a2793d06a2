"""``nextToken``: the opaque cursor of ECR's paginated operations.

A token carries the operation it came from and the last key of the page it ends (for
DescribeRepositories, a repository name), as unpadded urlsafe base64 of compact JSON::

    base64url({"o": "<Operation>", "a": "<last key>"})

It is not signed: a client that forges one only chooses where its own listing resumes, which
it may do anyway. It is bound to its operation so that a token from another listing is refused
with ECR's error rather than misread.
"""

from __future__ import annotations

import base64
import binascii
import json

from moorage.protocols.ecr_api.errors import INVALID_PARAMETER, ApiError

DEFAULT_PAGE_SIZE = 100


def encode_token(operation: str, after: str) -> str:
    """The token that resumes ``operation``'s listing after the key ``after``."""
    raw = json.dumps({"o": operation, "a": after}, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_token(operation: str, token: str) -> str:
    """The key a token of ``operation`` resumes after.

    Raises ApiError ``InvalidParameterException`` for anything this module did not write for
    ``operation``.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        document = json.loads(raw)
    except (binascii.Error, ValueError):
        document = None
    if (
        isinstance(document, dict)
        and document.get("o") == operation
        and isinstance(document.get("a"), str)
    ):
        return str(document["a"])
    raise ApiError(
        INVALID_PARAMETER,
        "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid pagination token'",
    )
