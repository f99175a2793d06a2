"""Registry login tokens: the password that GetAuthorizationToken hands out.

A client logs in to ``/v2/`` with ``Authorization: Basic base64("AWS:" + password)`` (what
``aws ecr get-login-password | docker login --username AWS`` sends), or presents the same
password as ``Authorization: Bearer <password>`` (what a token endpoint hands out). Building
the ``authorizationToken`` (base64 of ``AWS:<password>``) is the operation's job, not ours.

The password is opaque, authenticated and bound to its caller: AES-256-GCM (key derived
from the master key, purpose ``registry-login``, see ``iam/secrets.py``) over compact JSON
claims, encoded as unpadded urlsafe base64 (``^\\S+$``, as ECR's model requires)::

    base64url( 0x01 | nonce (12 bytes) | AES-GCM(claims, aad="moorage/registry-login/v1") )

    claims: {"a": account, "u": user id, "k": access key id, "i": issued, "e": expires,
             "s": scope (optional)}    times in whole epoch seconds

Tokens live 12 hours, as ECR's do. Nothing here is stored server-side, so a token cannot be
revoked by itself: whoever verifies it must check that the user and access key still exist
and are active (``RegistryAuthenticator`` does), and authorize every request afresh. A
``scope`` may be carried for a token endpoint's benefit; it never grants anything.

Errors: :class:`LoginTokenExpired` (the ``/v2/`` layer answers ECR's "Your authorization
token has expired. Reauthenticate and try again.") is a :class:`LoginTokenInvalid`, which
covers every other reason (malformed, altered, another master key) without saying which.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from moorage.ports.access import Principal

TOKEN_LIFETIME = timedelta(hours=12)

_VERSION = b"\x01"
_NONCE_BYTES = 12
_AAD = b"moorage/registry-login/v1"
# Far above a real token (about 250 characters); bounds the work a garbage header costs.
_MAX_TOKEN_LENGTH = 4096
_TOKEN_TEXT = re.compile(r"[A-Za-z0-9_-]+")


class LoginTokenInvalid(Exception):
    """The password is not a token this server issued (malformed, altered, other key)."""


class LoginTokenExpired(LoginTokenInvalid):
    """The token was valid, and its time is up."""

    def __init__(self, expired_at: datetime) -> None:
        super().__init__(f"the login token expired at {expired_at.isoformat()}")
        self.expired_at = expired_at


@dataclass(frozen=True, slots=True)
class LoginClaims:
    """Who a verified token was issued to, and when.

    ``user_id`` and ``access_key_id`` are None for a principal that is not an IAM user (the
    emulator's account root).
    """

    registry_id: str
    user_id: str | None
    access_key_id: str | None
    issued_at: datetime
    expires_at: datetime
    scope: str | None = None


class LoginTokens:
    """Issue and verify login tokens with one key (``KeyRing.registry_login``)."""

    def __init__(self, key: bytes, lifetime: timedelta = TOKEN_LIFETIME) -> None:
        if len(key) != 32:
            raise ValueError("a login token key is 32 bytes")
        self._aead = AESGCM(key)
        self._lifetime = lifetime

    def __repr__(self) -> str:
        return f"LoginTokens(lifetime={self._lifetime})"

    def issue(
        self, principal: Principal, now: datetime, *, scope: str | None = None
    ) -> tuple[str, datetime]:
        """A password for ``principal`` and the moment it expires (``now`` + 12 hours).

        ``now`` must be timezone-aware (ValueError otherwise); times are kept in whole
        seconds, so ``expires_at`` is at most a second short of the full lifetime. Raises
        ValueError for an anonymous principal: a token must name its caller.
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if principal.is_anonymous:
            raise ValueError("login tokens are issued to authenticated principals only")
        issued = int(now.timestamp())
        expires = issued + int(self._lifetime.total_seconds())
        claims: dict[str, Any] = {
            "a": principal.registry_id,
            "u": principal.user_id,
            "k": principal.access_key_id,
            "i": issued,
            "e": expires,
        }
        if scope is not None:
            claims["s"] = scope
        plaintext = json.dumps(claims, separators=(",", ":")).encode("utf-8")
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = _VERSION + nonce + self._aead.encrypt(nonce, plaintext, _AAD)
        password = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")
        return password, datetime.fromtimestamp(expires, UTC)

    def verify(self, password: str, now: datetime) -> LoginClaims:
        """The claims of a token this key issued. Raises LoginTokenExpired once ``now``
        reaches its expiry, LoginTokenInvalid for anything else that is wrong."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if len(password) > _MAX_TOKEN_LENGTH or not _TOKEN_TEXT.fullmatch(password):
            raise LoginTokenInvalid("the login token is malformed")
        try:
            sealed = base64.urlsafe_b64decode(password + "=" * (-len(password) % 4))
        except binascii.Error:
            raise LoginTokenInvalid("the login token is malformed") from None
        if len(sealed) <= 1 + _NONCE_BYTES or sealed[:1] != _VERSION:
            raise LoginTokenInvalid("the login token is malformed")
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            plaintext = self._aead.decrypt(nonce, body, _AAD)
        except InvalidTag:
            raise LoginTokenInvalid("the login token was not issued by this registry") from None
        claims = _parse_claims(plaintext)
        if now >= claims.expires_at:
            raise LoginTokenExpired(claims.expires_at)
        return claims


def _parse_claims(plaintext: bytes) -> LoginClaims:
    # Authenticated, so only our own issue() wrote this; still, never trust a shape blindly.
    try:
        raw = json.loads(plaintext)
        registry_id, user_id, key_id = raw["a"], raw["u"], raw["k"]
        issued, expires, scope = raw["i"], raw["e"], raw.get("s")
    except (ValueError, TypeError, KeyError):
        raise LoginTokenInvalid("the login token is malformed") from None
    if not (
        isinstance(registry_id, str)
        and all(value is None or isinstance(value, str) for value in (user_id, key_id, scope))
        and isinstance(issued, int)
        and isinstance(expires, int)
    ):
        raise LoginTokenInvalid("the login token is malformed")
    return LoginClaims(
        registry_id=registry_id,
        user_id=user_id,
        access_key_id=key_id,
        issued_at=datetime.fromtimestamp(issued, UTC),
        expires_at=datetime.fromtimestamp(expires, UTC),
        scope=scope,
    )
