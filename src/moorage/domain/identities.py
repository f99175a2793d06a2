"""Identities: accounts, IAM users, their access keys and inline identity policies.

An **account** is a registry (its 12-digit id is the ``registry_id`` everywhere else). It holds
**users**, each with a unique id (``AIDA`` + 17 characters, the ``aws:userid`` condition key)
and a name unique in the account. A user has up to :data:`MAX_ACCESS_KEYS_PER_USER` **access
keys** (``AKIA`` + 16 characters) and any number of named **inline policies** (identity
policies: no ``Principal``). Deleting a user deletes its keys and policies.

Names follow IAM's grammar: user names ``[\\w+=,.@-]{1,64}``, policy names
``[\\w+=,.@-]{1,128}`` (``\\w`` in ASCII: letters, digits, underscore). IAM compares user
names case-insensitively for uniqueness; we compare them exactly, as the stored bytes.

The secret half of an access key never lives here in clear: :class:`AccessKey` carries it
encrypted (``secret_ciphertext``, see ``iam/secrets.py``), and :class:`NewAccessKey` carries
the clear secret only on its way back to the caller who created it.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from moorage.domain.errors import InvalidAccount, InvalidPolicyName, InvalidUserName

# The IAM quota; AWS refuses a third key with LimitExceeded.
MAX_ACCESS_KEYS_PER_USER = 2
# Not an IAM number: IAM caps the sum of a user's inline policies at 2,048 characters, which
# leaves no room once managed policies are out of the picture. We bound each document as ECR
# bounds repository policies.
MAX_POLICY_DOCUMENT_LENGTH = 10_240
MAX_ACCOUNT_NAME_LENGTH = 50
MAX_PATH_LENGTH = 512

USER_ID_PREFIX = "AIDA"
ACCESS_KEY_ID_PREFIX = "AKIA"
_ID_ALPHABET = string.ascii_uppercase + string.digits
# What AWS secret access keys are made of (base64 characters), 40 of them.
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
SECRET_ACCESS_KEY_LENGTH = 40

USER_NAME_PATTERN = r"[\w+=,.@-]{1,64}"
POLICY_NAME_PATTERN = r"[\w+=,.@-]{1,128}"
_USER_NAME = re.compile(USER_NAME_PATTERN, re.ASCII)
_POLICY_NAME = re.compile(POLICY_NAME_PATTERN, re.ASCII)
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
# IAM paths: "/" or "/a/b/", printable ASCII without spaces inside.
_PATH = re.compile(r"/([\x21-\x7e]*/)?")
USER_ID_PATTERN = re.compile(USER_ID_PREFIX + r"[A-Z0-9]{17}")
ACCESS_KEY_ID_PATTERN = re.compile(ACCESS_KEY_ID_PREFIX + r"[A-Z0-9]{16}")


class AccessKeyStatus(StrEnum):
    ACTIVE = "Active"
    INACTIVE = "Inactive"


class AccountId(str):
    """A 12-digit account id (registry id)."""

    __slots__ = ()

    def __new__(cls, text: str) -> AccountId:
        if not _ACCOUNT_ID.fullmatch(text):
            raise InvalidAccount(f"account id must be 12 digits, not {text[:20]!r}")
        return super().__new__(cls, text)


class UserName(str):
    """An IAM user name: ``[\\w+=,.@-]{1,64}``."""

    __slots__ = ()

    def __new__(cls, text: str) -> UserName:
        if not _USER_NAME.fullmatch(text):
            raise InvalidUserName(
                f"user name must satisfy regular expression '{USER_NAME_PATTERN}'",
                detail={"name": text[:64]},
            )
        return super().__new__(cls, text)


class PolicyName(str):
    """An IAM inline policy name: ``[\\w+=,.@-]{1,128}``."""

    __slots__ = ()

    def __new__(cls, text: str) -> PolicyName:
        if not _POLICY_NAME.fullmatch(text):
            raise InvalidPolicyName(
                f"policy name must satisfy regular expression '{POLICY_NAME_PATTERN}'",
                detail={"name": text[:128]},
            )
        return super().__new__(cls, text)


def account_name(text: str) -> str:
    """A valid account name: 1 to 50 printable characters. Raises InvalidAccount."""
    if not 1 <= len(text) <= MAX_ACCOUNT_NAME_LENGTH or not text.isprintable():
        raise InvalidAccount(
            f"account name must be 1 to {MAX_ACCOUNT_NAME_LENGTH} printable characters"
        )
    return text


def user_path(text: str) -> str:
    """A valid IAM path (``/`` or ``/division/team/``). Raises InvalidUserName."""
    if len(text) > MAX_PATH_LENGTH or not _PATH.fullmatch(text):
        raise InvalidUserName("path must be '/' or start and end with '/' (at most 512 characters)")
    return text


def new_user_id() -> str:
    """A fresh user id: ``AIDA`` and 17 random upper-case letters and digits (88 bits)."""
    return USER_ID_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def new_access_key_id() -> str:
    """A fresh access key id: ``AKIA`` and 16 random upper-case letters and digits."""
    return ACCESS_KEY_ID_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def new_secret_access_key() -> str:
    """A fresh secret access key: 40 random base64 characters (238 bits), as AWS's look."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_ACCESS_KEY_LENGTH))


@dataclass(frozen=True, slots=True)
class Account:
    registry_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class User:
    """An IAM user. ``path`` is ``/`` unless the user was created under one."""

    user_id: str  # AIDA + 17 upper-case letters and digits
    registry_id: str
    name: str
    created_at: datetime
    path: str = "/"

    @property
    def arn(self) -> str:
        """``arn:aws:iam::<account>:user<path><name>``.

        Spelt out here because domain/ imports nothing else from moorage; a unit test holds it
        equal to ``moorage.iam.actions.user_arn``.
        """
        return f"arn:aws:iam::{self.registry_id}:user{self.path}{self.name}"


@dataclass(frozen=True, slots=True)
class AccessKey:
    """An access key as stored: the secret is encrypted (never in clear, never in a repr)."""

    access_key_id: str  # AKIA + 16 upper-case letters and digits
    user_id: str
    secret_ciphertext: bytes = field(repr=False)
    status: AccessKeyStatus
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewAccessKey:
    """A key just created, with its secret in clear: shown to the caller once, then dropped."""

    key: AccessKey
    secret_access_key: str = field(repr=False)

    @property
    def access_key_id(self) -> str:
        return self.key.access_key_id


@dataclass(frozen=True, slots=True)
class UserPolicy:
    """An inline identity policy of a user; ``document`` is the JSON text as given."""

    user_id: str
    name: str
    document: str
