"""Sealed claims: the token format shared by login passwords and layer download URLs.

A token is compact JSON claims, encrypted and authenticated with AES-256-GCM under a key
derived from the master key for one purpose (``iam/secrets.py``), with the purpose's label as
associated data, encoded as unpadded urlsafe base64 (no whitespace, URL- and header-safe)::

    base64url( 0x01 | nonce (12 bytes) | AES-GCM(claims, aad=<purpose label>) )

Nothing is stored: whoever opens a token trusts what it says only because this key sealed it,
and checks its expiry and whatever else the claims refer to.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"
_NONCE_BYTES = 12
_TOKEN_TEXT = re.compile(r"[A-Za-z0-9_-]+")


class Unsealable(Exception):
    """Not a token this box sealed: malformed, altered, or sealed under another key or label.

    ``forged`` tells a well-formed token that fails authentication from a malformed one.
    """

    def __init__(self, forged: bool) -> None:
        super().__init__("not issued here" if forged else "malformed")
        self.forged = forged


class SealedBox:
    """Seal and open claims with one 32-byte key and one purpose label.

    ``max_length`` bounds the token text accepted, so that garbage costs little to refuse.
    """

    def __init__(self, key: bytes, label: bytes, max_length: int) -> None:
        if len(key) != 32:
            raise ValueError("a sealing key is 32 bytes")
        self._aead = AESGCM(key)
        self._label = label
        self._max_length = max_length

    def __repr__(self) -> str:
        return f"SealedBox(label={self._label!r})"

    def seal(self, claims: Mapping[str, Any]) -> str:
        plaintext = json.dumps(claims, separators=(",", ":")).encode("utf-8")
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = _VERSION + nonce + self._aead.encrypt(nonce, plaintext, self._label)
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def open(self, token: str) -> dict[str, Any]:
        """The claims of a token this box sealed. Raises Unsealable.

        The claims are a JSON object; their fields are the caller's to check.
        """
        if len(token) > self._max_length or not _TOKEN_TEXT.fullmatch(token):
            raise Unsealable(forged=False)
        try:
            sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except binascii.Error:
            raise Unsealable(forged=False) from None
        if len(sealed) <= 1 + _NONCE_BYTES or sealed[:1] != _VERSION:
            raise Unsealable(forged=False)
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            plaintext = self._aead.decrypt(nonce, body, self._label)
        except InvalidTag:
            raise Unsealable(forged=True) from None
        try:
            claims = json.loads(plaintext)
        except ValueError:
            raise Unsealable(forged=False) from None
        if not isinstance(claims, dict):
            raise Unsealable(forged=False)
        return claims
