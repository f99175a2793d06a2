"""Layer download tokens: what makes GetDownloadUrlForLayer's URL a presigned one.

ECR answers GetDownloadUrlForLayer with a presigned S3 URL: anyone holding it may download
that one layer, without further credentials, until it expires. Ours is
``<scheme>://<host>/_moorage/layers/<token>``, where the token is sealed claims
(``iam/sealed.py``; key purpose ``layer-download``, label ``moorage/layer-download/v1``)::

    claims: {"a": registry id, "g": region, "r": repository, "d": digest,
             "e": expires (epoch seconds)}   ("g" absent in tokens issued before regions)

A token lives one hour. It grants a download only while the blob is still in that
repository (whoever redeems it checks), and never anything else. Nothing is stored, so a
token cannot be revoked before it expires; rotating the master key ends them all.

Errors: :class:`DownloadTokenExpired` is a :class:`DownloadTokenInvalid`, which covers every
other reason (malformed, altered, another master key) without saying which.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from moorage.iam.sealed import SealedBox, Unsealable

TOKEN_LIFETIME = timedelta(hours=1)

_LABEL = b"moorage/layer-download/v1"
# A real token is under 700 characters (a 256-character repository name included).
_MAX_TOKEN_LENGTH = 2048


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
    region: str | None = None  # None: issued before regions, the deployment's region


class DownloadTokens:
    """Issue and verify download tokens with one key (``KeyRing.layer_download``)."""

    def __init__(self, key: bytes, lifetime: timedelta = TOKEN_LIFETIME) -> None:
        if len(key) != 32:
            raise ValueError("a download token key is 32 bytes")
        self._box = SealedBox(key, _LABEL, _MAX_TOKEN_LENGTH)
        self._lifetime = lifetime

    def __repr__(self) -> str:
        return f"DownloadTokens(lifetime={self._lifetime})"

    def issue(
        self,
        registry_id: str,
        repository: str,
        digest: str,
        now: datetime,
        *,
        region: str | None = None,
    ) -> tuple[str, datetime]:
        """A token for one blob of one repository, and the moment it expires (whole seconds).

        ``now`` must be timezone-aware (ValueError otherwise).
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        expires = int(now.timestamp()) + int(self._lifetime.total_seconds())
        claims: dict[str, object] = {"a": registry_id, "r": repository, "d": digest, "e": expires}
        if region is not None:
            claims["g"] = region
        token = self._box.seal(claims)
        return token, datetime.fromtimestamp(expires, UTC)

    def verify(self, token: str, now: datetime) -> DownloadClaims:
        """The claims of a token this key issued. Raises DownloadTokenExpired once ``now``
        reaches its expiry, DownloadTokenInvalid for anything else that is wrong."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        try:
            raw = self._box.open(token)
        except Unsealable as exc:
            reason = "was not issued here" if exc.forged else "is malformed"
            raise DownloadTokenInvalid(f"the download token {reason}") from None
        claims = _parse_claims(raw)
        if now >= claims.expires_at:
            raise DownloadTokenExpired("the download URL has expired")
        return claims


def _parse_claims(raw: dict[str, object]) -> DownloadClaims:
    # Authenticated, so only issue() wrote this; the shape is still checked, never trusted.
    registry_id, repository, digest, expires = (raw.get(k) for k in ("a", "r", "d", "e"))
    region = raw.get("g")
    if not (
        isinstance(registry_id, str)
        and isinstance(repository, str)
        and isinstance(digest, str)
        and isinstance(expires, int)
        and (region is None or isinstance(region, str))
    ):
        raise DownloadTokenInvalid("the download token is malformed")
    expires_at = datetime.fromtimestamp(expires, UTC)
    return DownloadClaims(registry_id, repository, digest, expires_at, region)
