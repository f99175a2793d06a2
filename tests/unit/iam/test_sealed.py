from __future__ import annotations

import base64
import secrets

import pytest

from moorage.iam.sealed import SealedBox, Unsealable

KEY = secrets.token_bytes(32)
BOX = SealedBox(KEY, b"purpose/v1", max_length=512)


def test_claims_round_trip_in_a_header_safe_token() -> None:
    token = BOX.seal({"a": "123456789012", "n": 7})
    assert BOX.open(token) == {"a": "123456789012", "n": 7}
    assert token.replace("-", "").replace("_", "").isalnum()


def test_tokens_differ_each_time() -> None:
    assert BOX.seal({"a": 1}) != BOX.seal({"a": 1})


@pytest.mark.parametrize(
    "box",
    [
        SealedBox(secrets.token_bytes(32), b"purpose/v1", 512),  # another key
        SealedBox(KEY, b"other-purpose/v1", 512),  # another purpose
    ],
)
def test_only_the_same_key_and_purpose_open_a_token(box: SealedBox) -> None:
    with pytest.raises(Unsealable) as caught:
        box.open(BOX.seal({"a": 1}))
    assert caught.value.forged


def test_an_altered_token_is_forged() -> None:
    raw = bytearray(base64.urlsafe_b64decode(BOX.seal({"a": 1}) + "=="))
    raw[-1] ^= 1
    with pytest.raises(Unsealable) as caught:
        BOX.open(base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode())
    assert caught.value.forged


@pytest.mark.parametrize(
    "token",
    ["", "not base64!", "a" * 513, "AQ", base64.urlsafe_b64encode(b"\x02" + b"x" * 40).decode()],
)
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(Unsealable) as caught:
        BOX.open(token.rstrip("="))
    assert not caught.value.forged


def test_keys_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SealedBox(b"short", b"p", 10)
