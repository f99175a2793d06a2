"""Replication tokens: how one deployment proves, to another, which account it replicates for.

ECR's replication acts for the source account: the destination's registry policy grants
``arn:aws:iam::<source>:root`` ``ecr:ReplicateImage`` (and ``ecr:CreateRepository``). Between
deployments there is no shared account store and no shared admin key, so the source signs a
short-lived token instead, with a key pair of its own:

    Ed25519 key pair      seed: HKDF-SHA256 of the master key, info "moorage/v1/replication";
                          the public key is printed by ``moorage replication public-key``
    token                 "mrt1." base64url(claims JSON) "." base64url(signature)
    claims                src (source account), dst (destination account), rgn (destination
                          region), iss (source region), exp (unix seconds; 5 minutes ahead)

The destination accepts a token signed by one of its ``replication_trusted_keys``, for a
region it serves, not expired; the caller is then the source account's root, acting on the
destination account only, and only as replication (``Principal.replicating``). Everything
else it may do is what the destination's own policies grant that principal.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PREFIX = "mrt1."
LIFETIME = timedelta(minutes=5)
MAX_TOKEN_LENGTH = 4096


class ReplicaTokenInvalid(Exception):
    """Not a token of a trusted deployment, expired, or malformed (the message says which,
    and holds nothing secret)."""


@dataclass(frozen=True, slots=True)
class ReplicaClaims:
    source_account: str
    destination_account: str
    destination_region: str
    source_region: str
    expires: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_text(key: Ed25519PublicKey) -> str:
    return _b64(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


class ReplicaTokenSigner:
    def __init__(self, seed: bytes) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(seed[:32])

    def __repr__(self) -> str:
        return f"ReplicaTokenSigner(public={self.public_key})"

    @property
    def public_key(self) -> str:
        return public_key_text(self._key.public_key())

    def issue(self, claims: ReplicaClaims) -> str:
        document = {
            "src": claims.source_account,
            "dst": claims.destination_account,
            "rgn": claims.destination_region,
            "iss": claims.source_region,
            "exp": int(claims.expires.timestamp()),
        }
        body = _b64(json.dumps(document, separators=(",", ":")).encode())
        signature = _b64(self._key.sign(body.encode("ascii")))
        return f"{PREFIX}{body}.{signature}"


class ReplicaTokenVerifier:
    """Verifies tokens of the deployments whose public keys it trusts."""

    def __init__(self, trusted: Iterable[str]) -> None:
        self._keys = []
        for text in trusted:
            try:
                self._keys.append(Ed25519PublicKey.from_public_bytes(_unb64(text.strip())))
            except (ValueError, binascii.Error) as bad:
                raise ValueError(f"not an Ed25519 public key: {text!r}") from bad

    def __bool__(self) -> bool:
        return bool(self._keys)

    def verify(self, token: str, now: datetime) -> ReplicaClaims:
        """The claims of a valid token. Raises ReplicaTokenInvalid."""
        if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_LENGTH:
            raise ReplicaTokenInvalid("not a replication token")
        body, dot, signature_text = token[len(PREFIX) :].partition(".")
        if not dot:
            raise ReplicaTokenInvalid("a malformed replication token")
        try:
            signature = _unb64(signature_text)
            document = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            raise ReplicaTokenInvalid("a malformed replication token") from None
        for key in self._keys:
            try:
                key.verify(signature, body.encode("ascii"))
                break
            except InvalidSignature:
                continue
        else:
            raise ReplicaTokenInvalid("a replication token no trusted deployment signed")
        try:
            claims = ReplicaClaims(
                source_account=str(document["src"]),
                destination_account=str(document["dst"]),
                destination_region=str(document["rgn"]),
                source_region=str(document["iss"]),
                expires=datetime.fromtimestamp(int(document["exp"]), tz=now.tzinfo),
            )
        except (KeyError, TypeError, ValueError):
            raise ReplicaTokenInvalid("a replication token without its claims") from None
        if claims.expires <= now:
            raise ReplicaTokenInvalid("an expired replication token")
        return claims
