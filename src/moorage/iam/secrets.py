"""Secrets at rest: the master key, the keys derived from it, and the cipher for secret keys.

Key hierarchy::

    master key                  32 random bytes: settings.master_key (urlsafe base64), else
     │                          <data_dir>/master.key, created on first start (mode 0600)
     ├── HKDF-SHA256, info "moorage/v1/access-key-secret"
     │     -> AES-256-GCM key: secret access keys in the database (SecretCipher)
     ├── HKDF-SHA256, info "moorage/v1/registry-login"
     │     -> AES-256-GCM key: registry login tokens (iam/login_tokens.py)
     ├── HKDF-SHA256, info "moorage/v1/layer-download"
     │     -> AES-256-GCM key: GetDownloadUrlForLayer's URLs (iam/download_tokens.py)
     ├── HKDF-SHA256, info "moorage/v1/replication"
     │     -> the seed of the Ed25519 key that signs replication tokens (iam/replica_tokens.py)
     ├── HKDF-SHA256, info "moorage/v1/secret-value"
     │     -> AES-256-GCM key: Secrets Manager's secret values (services/secrets.py), each
     │        bound to its secret's ARN and version id
     └── HKDF-SHA256, info "moorage/v1/key-check"
           -> 4 bytes stored with each ciphertext, to tell "another master key" from "tampered"

Why AES-GCM rather than Fernet: AES-GCM takes associated data, so each ciphertext is bound
to the access key id it belongs to (a ciphertext copied onto another key's row does not
decrypt); Fernet has no associated data, and adds a timestamp and base64 text we do not
need. Nonces are 96 random bits: safe far beyond the number of keys a registry creates
(NIST's bound for random nonces is 2^32 encryptions per key).

Ciphertext layout (``SecretCipher``): version byte ``0x01`` | 4-byte key check | 12-byte
nonce | AES-GCM ciphertext and 16-byte tag.

Several servers on one PostgreSQL database must share the master key: set ``master_key``
(``MOORAGE_MASTER_KEY``) on each. Losing the master key loses every stored secret access
key (new keys must be issued) and ends every login token.

Secrets never appear in reprs, logs or exception messages.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from moorage.config import ConfigError

log = logging.getLogger("moorage.iam")

MASTER_KEY_FILE = "master.key"
MASTER_KEY_BYTES = 32
_KEY_TEXT = re.compile(r"[A-Za-z0-9_-]{43}=?")
_INFO_PREFIX = b"moorage/v1/"

PURPOSE_ACCESS_KEY_SECRET = "access-key-secret"
PURPOSE_REGISTRY_LOGIN = "registry-login"
PURPOSE_LAYER_DOWNLOAD = "layer-download"
PURPOSE_SECRET_VALUE = "secret-value"
PURPOSE_REPLICATION = "replication"
_PURPOSE_KEY_CHECK = "key-check"

_VERSION = b"\x01"
_KEY_CHECK_BYTES = 4
_NONCE_BYTES = 12
_TAG_BYTES = 16


class MasterKeyError(ConfigError):
    """The master key cannot be read, created or decoded; the message is one line."""


class SecretUndecryptable(Exception):
    """A stored secret does not decrypt: sealed under another master key, or altered.

    The message says which (as far as the key check can tell) and never holds the secret.
    """


@dataclass(frozen=True)
class MasterKey:
    """The 32-byte master key. Its bytes never appear in ``repr`` or ``str``."""

    material: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.material) != MASTER_KEY_BYTES:
            raise MasterKeyError(f"a master key is {MASTER_KEY_BYTES} bytes")

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(secrets.token_bytes(MASTER_KEY_BYTES))

    @classmethod
    def decode(cls, text: str, source: str) -> MasterKey:
        """Decode urlsafe base64 text (padding optional, surrounding whitespace ignored).

        Raises MasterKeyError naming ``source`` (never quoting the text).
        """
        stripped = text.strip()
        if not _KEY_TEXT.fullmatch(stripped):
            raise MasterKeyError(
                f"{source} is not a master key: expected urlsafe base64 of "
                f"{MASTER_KEY_BYTES} bytes (44 characters)"
            )
        try:
            material = base64.urlsafe_b64decode(stripped.rstrip("=") + "=")
        except binascii.Error:
            raise MasterKeyError(f"{source} is not valid urlsafe base64") from None
        return cls(material)

    def encode(self) -> str:
        """Urlsafe base64 text, as ``master.key`` and ``MOORAGE_MASTER_KEY`` hold it."""
        return base64.urlsafe_b64encode(self.material).decode("ascii")

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (HKDF-SHA256; ``info`` names the purpose)."""
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=_INFO_PREFIX + purpose.encode("ascii"),
        )
        return hkdf.derive(self.material)


def load_master_key(configured: str | None, data_dir: Path) -> MasterKey:
    """The master key: ``configured`` (the ``master_key`` setting) when given, else the one
    in ``<data_dir>/master.key``, which is created first when it does not exist.

    Creation is atomic and never replaces an existing file: the key is written to a private
    temporary file, flushed to disk, then hard-linked into place; when two processes race,
    both end up using the one that was linked first. Raises MasterKeyError (one line) when
    the key is malformed or the file cannot be read or created.
    """
    if configured is not None:
        return MasterKey.decode(configured, "setting master_key (MOORAGE_MASTER_KEY)")
    path = data_dir / MASTER_KEY_FILE
    if not path.exists():
        _create_key_file(path)
    try:
        text = path.read_text(encoding="ascii")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
        raise MasterKeyError(f"cannot read master key {path}: {reason}") from None
    if mode & 0o077:
        log.warning(
            "master key %s is readable by other users (mode %o); chmod 600 it", path, mode & 0o777
        )
    return MasterKey.decode(text, f"master key file {path}")


def _create_key_file(path: Path) -> None:
    key = MasterKey.generate()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                os.fchmod(descriptor, 0o600)  # whatever the umask left
                os.write(descriptor, (key.encode() + "\n").encode("ascii"))
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            # link() fails when the name exists: a key, once there, is never replaced. When
            # another process created it first, we use that one.
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_directory(path.parent)
    except OSError as exc:
        raise MasterKeyError(f"cannot create master key {path}: {exc.strerror or exc}") from None
    log.info("created master key %s", path)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class SecretCipher:
    """AES-256-GCM for small secrets, each bound to a context (the row it belongs to).

    ``encrypt(plaintext, context)`` output decrypts only with the same master key and the
    same ``context``; anything else raises SecretUndecryptable.
    """

    def __init__(self, key: bytes, key_check: bytes) -> None:
        self._aead = AESGCM(key)
        self._key_check = key_check

    def __repr__(self) -> str:
        return "SecretCipher(...)"

    def encrypt(self, plaintext: str, context: str) -> bytes:
        return self.encrypt_bytes(plaintext.encode("utf-8"), context)

    def encrypt_bytes(self, plaintext: bytes, context: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, context.encode("utf-8"))
        return _VERSION + self._key_check + nonce + sealed

    def encrypted_by_this_key(self, ciphertext: bytes) -> bool:
        """Whether ``ciphertext`` was made under this cipher's master key (its key check
        says so); it may still have been altered."""
        return ciphertext[:1] == _VERSION and hmac.compare_digest(
            ciphertext[1 : 1 + _KEY_CHECK_BYTES], self._key_check
        )

    def decrypt(self, ciphertext: bytes, context: str) -> str:
        return self.decrypt_bytes(ciphertext, context).decode("utf-8")

    def decrypt_bytes(self, ciphertext: bytes, context: str) -> bytes:
        header = len(_VERSION) + _KEY_CHECK_BYTES + _NONCE_BYTES
        if len(ciphertext) < header + _TAG_BYTES or ciphertext[:1] != _VERSION:
            raise SecretUndecryptable(f"the stored secret of {context} is not in a known format")
        key_check = ciphertext[1 : 1 + _KEY_CHECK_BYTES]
        if not hmac.compare_digest(key_check, self._key_check):
            raise SecretUndecryptable(
                f"the stored secret of {context} was encrypted under another master key"
            )
        nonce = ciphertext[1 + _KEY_CHECK_BYTES : header]
        try:
            plaintext = self._aead.decrypt(nonce, ciphertext[header:], context.encode("utf-8"))
        except InvalidTag:
            raise SecretUndecryptable(
                f"the stored secret of {context} was altered or belongs to another key"
            ) from None
        return plaintext


@dataclass(frozen=True)
class KeyRing:
    """The keys derived from one master key, one per purpose."""

    access_key_secrets: SecretCipher
    registry_login: bytes = field(repr=False)
    layer_download: bytes = field(repr=False)
    secret_values: SecretCipher | None = None
    replication_seed: bytes = field(default=b"", repr=False)

    @classmethod
    def derive(cls, master: MasterKey) -> KeyRing:
        key_check = master.derive(_PURPOSE_KEY_CHECK)[:_KEY_CHECK_BYTES]
        return cls(
            access_key_secrets=SecretCipher(master.derive(PURPOSE_ACCESS_KEY_SECRET), key_check),
            registry_login=master.derive(PURPOSE_REGISTRY_LOGIN),
            layer_download=master.derive(PURPOSE_LAYER_DOWNLOAD),
            secret_values=SecretCipher(master.derive(PURPOSE_SECRET_VALUE), key_check),
            replication_seed=master.derive(PURPOSE_REPLICATION),
        )
