"""Authentication for the ECR API: the port an authenticator fills, and what it is given.

The dispatcher authenticates every request before it reads the JSON, through an
:class:`ApiAuthenticator` (``services/authentication.py`` holds the one backed by stored access
keys, and the emulator's). An authenticator refuses with AWS's code and a message fit for the
client, in any of three ways, all answered alike: ``ports.access.AuthenticationFailed`` (for
implementations outside the protocol layer), ``iam.sigv4.SignatureError``, or an ``ApiError``
(``errors.py`` has factories for the front-door errors).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from aiohttp import web

from moorage.iam.sigv4 import SignedRequest
from moorage.ports.access import Principal


class ApiAuthenticator(Protocol):
    async def authenticate(self, request: SignedRequest, source_ip: str | None) -> Principal:
        """Return the caller who signed ``request``; refuse with AWS's code otherwise.

        ``MissingAuthenticationTokenException`` when nothing is signed,
        ``UnrecognizedClientException`` for an unknown access key, the `SignatureError`'s code
        when the signature does not hold, ``ExpiredTokenException`` for an expired session.
        """
        ...


@runtime_checkable
class PreBodyScreen(Protocol):
    """An authenticator that can also refuse a request from its headers alone."""

    async def screen(self, request: SignedRequest, source_ip: str | None) -> object:
        """Refuse what no key of ours signed, before the body is read (the body is not known
        yet: ``request.body_sha256`` is empty). Raises as ``authenticate`` would; returns
        what :meth:`authenticate_screened` needs (opaque to the caller)."""
        ...

    async def authenticate_screened(
        self, request: SignedRequest, screened: object, source_ip: str | None
    ) -> Principal:
        """``authenticate``, for a request :meth:`screen` passed, without its work again."""
        ...


def signed_request(request: web.Request, body_sha256: str) -> SignedRequest:
    """The parts of ``request`` SigV4 covers, exactly as received.

    Path and query come from ``raw_path`` (still percent-encoded); a repeated header's values
    are joined with ``","``, as HTTP folds them.
    """
    path, _, query = request.raw_path.partition("?")
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return SignedRequest(
        method=request.method, path=path, query=query, headers=headers, body_sha256=body_sha256
    )
