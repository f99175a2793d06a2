"""Registry login tokens: the password that GetAuthorizationToken hands out.

A client logs in to ``/v2/`` with ``Authorization: Basic base64("AWS:" + password)`` (what
``aws ecr get-login-password | docker login --username AWS`` sends), or presents the same
password as ``Authorization: Bearer <password>`` (what a token endpoint hands out). Building
the ``authorizationToken`` (base64 of ``AWS:<password>``) is the operation's job, not ours.

The password is opaque, authenticated and bound to its caller: sealed claims
(``iam/sealed.py``; key purpose ``registry-login``, label ``moorage/registry-login/v1``),
with no whitespace (``^\\S+$``, as ECR's model requires)::

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

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from moorage.iam.sealed import SealedBox, Unsealable
from moorage.ports.access import Principal

TOKEN_LIFETIME = timedelta(hours=12)

_LABEL = b"moorage/registry-login/v1"
# Far above a real token (about 250 characters); bounds the work a garbage header costs.
_MAX_TOKEN_LENGTH = 4096


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
        self._box = SealedBox(key, _LABEL, _MAX_TOKEN_LENGTH)
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
        return self._box.seal(claims), datetime.fromtimestamp(expires, UTC)

    def verify(self, password: str, now: datetime) -> LoginClaims:
        """The claims of a token this key issued. Raises LoginTokenExpired once ``now``
        reaches its expiry, LoginTokenInvalid for anything else that is wrong."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        try:
            raw = self._box.open(password)
        except Unsealable as exc:
            reason = "was not issued by this registry" if exc.forged else "is malformed"
            raise LoginTokenInvalid(f"the login token {reason}") from None
        claims = _parse_claims(raw)
        if now >= claims.expires_at:
            raise LoginTokenExpired(claims.expires_at)
        return claims


def _parse_claims(raw: dict[str, Any]) -> LoginClaims:
    # Authenticated, so only our own issue() wrote this; still, never trust a shape blindly.
    registry_id, user_id, key_id = raw.get("a"), raw.get("u"), raw.get("k")
    issued, expires, scope = raw.get("i"), raw.get("e"), raw.get("s")
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
