"""Registry login tokens: issued to a caller, authenticated, opaque, 12 hours long."""

from __future__ import annotations

import base64
import json
import os
import re
from datetime import UTC, datetime, timedelta

import pytest

from moorage.iam.login_tokens import (
    TOKEN_LIFETIME,
    LoginClaims,
    LoginTokenExpired,
    LoginTokenInvalid,
    LoginTokens,
)
from moorage.ports.access import Principal

NOW = datetime(2026, 11, 27, 9, 30, 15, 750000, tzinfo=UTC)
ALICE = Principal(
    registry_id="123456789012",
    arn="arn:aws:iam::123456789012:user/alice",
    user_id="AIDAABCDEFGHIJKLMNOPQ",
    username="alice",
    access_key_id="AKIAABCDEFGHIJKLMNOP",
)
KEY = bytes(range(32))


def tokens(key: bytes = KEY) -> LoginTokens:
    return LoginTokens(key)


def test_a_token_verifies_to_its_caller_for_12_hours() -> None:
    password, expires_at = tokens().issue(ALICE, NOW)
    assert timedelta(hours=12) == TOKEN_LIFETIME
    assert expires_at == NOW.replace(microsecond=0) + TOKEN_LIFETIME
    claims = tokens().verify(password, NOW)
    assert claims == LoginClaims(
        registry_id=ALICE.registry_id,
        user_id=ALICE.user_id,
        access_key_id=ALICE.access_key_id,
        issued_at=NOW.replace(microsecond=0),
        expires_at=expires_at,
    )
    assert tokens().verify(password, expires_at - timedelta(microseconds=1)) == claims


def test_at_its_expiry_a_token_is_expired_not_invalid() -> None:
    password, expires_at = tokens().issue(ALICE, NOW)
    for later in (expires_at, expires_at + timedelta(days=400)):
        with pytest.raises(LoginTokenExpired) as raised:
            tokens().verify(password, later)
        assert raised.value.expired_at == expires_at
        assert isinstance(raised.value, LoginTokenInvalid)


def test_tokens_are_opaque_and_have_no_whitespace() -> None:
    password, _ = tokens().issue(ALICE, NOW, scope="repository:team/app:pull")
    assert re.fullmatch(r"\S+", password)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", password)
    raw = base64.urlsafe_b64decode(password + "=" * (-len(password) % 4))
    for visible in (ALICE.user_id, ALICE.access_key_id, ALICE.registry_id, "alice", "team/app"):
        assert visible is not None
        assert visible.encode() not in raw
    # Two tokens for the same caller at the same moment differ (fresh nonces).
    assert password != tokens().issue(ALICE, NOW, scope="repository:team/app:pull")[0]


def test_a_scope_is_carried() -> None:
    password, _ = tokens().issue(ALICE, NOW, scope="repository:team/app:pull,push")
    assert tokens().verify(password, NOW).scope == "repository:team/app:pull,push"


def test_any_altered_byte_makes_the_token_invalid() -> None:
    password, _ = tokens().issue(ALICE, NOW)
    raw = bytearray(base64.urlsafe_b64decode(password + "=" * (-len(password) % 4)))
    for index in range(len(raw)):
        altered = bytearray(raw)
        altered[index] ^= 0x80
        text = base64.urlsafe_b64encode(bytes(altered)).rstrip(b"=").decode()
        with pytest.raises(LoginTokenInvalid) as raised:
            tokens().verify(text, NOW)
        assert not isinstance(raised.value, LoginTokenExpired)


def test_a_token_from_another_master_key_is_invalid() -> None:
    password, _ = tokens(os.urandom(32)).issue(ALICE, NOW)
    with pytest.raises(LoginTokenInvalid, match="not issued by this registry"):
        tokens().verify(password, NOW)


def test_an_expired_token_from_another_key_is_invalid_not_expired() -> None:
    # Expiry is only read from an authenticated token.
    password, _ = tokens(os.urandom(32)).issue(ALICE, NOW - timedelta(days=2))
    with pytest.raises(LoginTokenInvalid) as raised:
        tokens().verify(password, NOW)
    assert not isinstance(raised.value, LoginTokenExpired)


@pytest.mark.parametrize(
    "garbage",
    ["", "x", "a b", "=" * 8, "AWS:secret", "!!!!", "a" * 5000, "Zm9v", "\u00e9t\u00e9"],
)
def test_garbage_is_invalid(garbage: str) -> None:
    with pytest.raises(LoginTokenInvalid):
        tokens().verify(garbage, NOW)


def test_claims_forged_with_the_right_key_but_a_wrong_shape_are_invalid() -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = bytes(12)
    body = json.dumps({"a": 1, "u": None, "k": None, "i": "x", "e": 2}).encode()
    sealed = b"\x01" + nonce + AESGCM(KEY).encrypt(nonce, body, b"moorage/registry-login/v1")
    text = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()
    with pytest.raises(LoginTokenInvalid, match="malformed"):
        tokens().verify(text, NOW)


def test_an_account_root_gets_a_token_without_user_and_key() -> None:
    root = Principal(registry_id="123456789012", arn="arn:aws:iam::123456789012:root")
    password, _ = tokens().issue(root, NOW)
    claims = tokens().verify(password, NOW)
    assert (claims.registry_id, claims.user_id, claims.access_key_id) == (
        "123456789012",
        None,
        None,
    )


def test_anonymous_callers_and_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="authenticated"):
        tokens().issue(Principal(registry_id="123456789012"), NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        tokens().issue(ALICE, NOW.replace(tzinfo=None))
    password, _ = tokens().issue(ALICE, NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        tokens().verify(password, NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="32 bytes"):
        LoginTokens(b"short")


def test_the_key_stays_out_of_repr() -> None:
    assert repr(KEY) not in repr(tokens())
    assert KEY.hex() not in repr(tokens())
