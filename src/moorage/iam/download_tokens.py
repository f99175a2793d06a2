"""Layer download tokens: what makes GetDownloadUrlForLayer's URL a presigned one.

ECR answers GetDownloadUrlForLayer with a presigned S3 URL: anyone holding it may download
that one layer, without further credentials, until it expires. Ours is
``<scheme>://<host>/_moorage/layers/<token>``, where the token is authenticated and opaque:
AES-256-GCM (key derived from the master key, purpose ``layer-download``, see
``iam/secrets.py``) over compact JSON claims, as unpadded urlsafe base64::

    base64url( 0x01 | nonce (12 bytes) | AES-GCM(claims, aad="moorage/layer-download/v1") )

    claims: {"a": registry id, "r": repository, "d": digest, "e": expires (epoch seconds)}

A token lives one hour. It grants a download only while the blob is still in that
repository (whoever redeems it checks), and never anything else. Nothing is stored, so a
token cannot be revoked before it expires; rotating the master key ends them all.

Errors: :class:`DownloadTokenExpired` is a :class:`DownloadTokenInvalid`, which covers every
other reason (malformed, altered, another master key) without saying which.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TOKEN_LIFETIME = timedelta(hours=1)

_VERSION = b"\x01"
_NONCE_BYTES = 12
_AAD = b"moorage/layer-download/v1"
# A real token is under 700 characters (a 256-character repository name included).
_MAX_TOKEN_LENGTH = 2048
_TOKEN_TEXT = re.compile(r"[A-Za-z0-9_-]+")


class DownloadTokenInvalid(Exception):
    """The token is not one this server issued (malformed, altered, other key)."""


class DownloadTokenExpired(DownloadTokenInvalid):
    """The token was valid, and its time is up."""


@dataclass(frozen=True, slots=True)
class DownloadClaims:
    """What a verified token lets its holder download, and until when."""

    registry_id: str
    repository: str
    digest: str
    expires_at: datetime


class DownloadTokens:
    """Issue and verify download tokens with one key (``KeyRing.layer_download``)."""

    def __init__(self, key: bytes, lifetime: timedelta = TOKEN_LIFETIME) -> None:
        if len(key) != 32:
            raise ValueError("a download token key is 32 bytes")
        self._aead = AESGCM(key)
        self._lifetime = lifetime

    def __repr__(self) -> str:
        return f"DownloadTokens(lifetime={self._lifetime})"

    def issue(
        self, registry_id: str, repository: str, digest: str, now: datetime
    ) -> tuple[str, datetime]:
        """A token for one blob of one repository, and the moment it expires (whole seconds).

        ``now`` must be timezone-aware (ValueError otherwise).
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        expires = int(now.timestamp()) + int(self._lifetime.total_seconds())
        claims = {"a": registry_id, "r": repository, "d": digest, "e": expires}
        plaintext = json.dumps(claims, separators=(",", ":")).encode("utf-8")
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = _VERSION + nonce + self._aead.encrypt(nonce, plaintext, _AAD)
        token = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")
        return token, datetime.fromtimestamp(expires, UTC)

    def verify(self, token: str, now: datetime) -> DownloadClaims:
        """The claims of a token this key issued. Raises DownloadTokenExpired once ``now``
        reaches its expiry, DownloadTokenInvalid for anything else that is wrong."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if len(token) > _MAX_TOKEN_LENGTH or not _TOKEN_TEXT.fullmatch(token):
            raise DownloadTokenInvalid("the download token is malformed")
        try:
            sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except binascii.Error:
            raise DownloadTokenInvalid("the download token is malformed") from None
        if len(sealed) <= 1 + _NONCE_BYTES or sealed[:1] != _VERSION:
            raise DownloadTokenInvalid("the download token is malformed")
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            plaintext = self._aead.decrypt(nonce, body, _AAD)
        except InvalidTag:
            raise DownloadTokenInvalid("the download token was not issued here") from None
        claims = _parse_claims(plaintext)
        if now >= claims.expires_at:
            raise DownloadTokenExpired("the download URL has expired")
        return claims


def _parse_claims(plaintext: bytes) -> DownloadClaims:
    # Authenticated, so only issue() wrote this; the shape is still checked, never trusted.
    try:
        raw = json.loads(plaintext)
        registry_id, repository, digest, expires = raw["a"], raw["r"], raw["d"], raw["e"]
    except (ValueError, TypeError, KeyError):
        raise DownloadTokenInvalid("the download token is malformed") from None
    if not (
        all(isinstance(value, str) for value in (registry_id, repository, digest))
        and isinstance(expires, int)
    ):
        raise DownloadTokenInvalid("the download token is malformed")
    return DownloadClaims(registry_id, repository, digest, datetime.fromtimestamp(expires, UTC))
