"""Identity names, ids and records (``moorage.domain.identities``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from moorage.domain.errors import InvalidAccount, InvalidPolicyName, InvalidUserName
from moorage.domain.identities import (
    ACCESS_KEY_ID_PATTERN,
    USER_ID_PATTERN,
    AccessKey,
    AccessKeyStatus,
    AccountId,
    NewAccessKey,
    PolicyName,
    User,
    UserName,
    account_name,
    new_access_key_id,
    new_secret_access_key,
    new_user_id,
    user_path,
)
from moorage.iam.actions import user_arn

T0 = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize("name", ["a", "alice", "ci-bot", "A_b+c=d,e.f@g-h", "x" * 64])
def test_valid_user_names(name: str) -> None:
    assert UserName(name) == name


@pytest.mark.parametrize("name", ["", "x" * 65, "with space", "slash/y", "caf\u00e9", "a:b"])
def test_invalid_user_names(name: str) -> None:
    with pytest.raises(InvalidUserName, match="regular expression"):
        UserName(name)


def test_policy_names_allow_128_characters() -> None:
    assert PolicyName("p" * 128) == "p" * 128
    with pytest.raises(InvalidPolicyName):
        PolicyName("p" * 129)
    with pytest.raises(InvalidPolicyName):
        PolicyName("no spaces")


@pytest.mark.parametrize("text", ["12345678901", "1234567890123", "12345678901a", ""])
def test_account_ids_are_12_digits(text: str) -> None:
    with pytest.raises(InvalidAccount):
        AccountId(text)
    assert AccountId("000000000042") == "000000000042"


def test_account_names_are_short_and_printable() -> None:
    assert account_name("Team Platform") == "Team Platform"
    for bad in ["", "x" * 51, "line\nbreak"]:
        with pytest.raises(InvalidAccount):
            account_name(bad)


@pytest.mark.parametrize("path", ["/", "/team/", "/a/b-c/"])
def test_valid_paths(path: str) -> None:
    assert user_path(path) == path


@pytest.mark.parametrize("path", ["", "team/", "/team", "/with space/", "/" + "x" * 512 + "/"])
def test_invalid_paths(path: str) -> None:
    with pytest.raises(InvalidUserName):
        user_path(path)


def test_ids_look_like_aws_ids_and_differ() -> None:
    user_ids = {new_user_id() for _ in range(100)}
    key_ids = {new_access_key_id() for _ in range(100)}
    assert len(user_ids) == len(key_ids) == 100
    assert all(USER_ID_PATTERN.fullmatch(i) and len(i) == 21 for i in user_ids)
    assert all(ACCESS_KEY_ID_PATTERN.fullmatch(i) and len(i) == 20 for i in key_ids)
    secret = new_secret_access_key()
    assert len(secret) == 40
    assert secret.isascii()
    assert not any(c.isspace() for c in secret)


def test_user_arn_matches_the_iam_helper() -> None:
    plain = User("AIDA" + "A" * 17, "123456789012", "alice", T0)
    nested = User("AIDA" + "B" * 17, "123456789012", "bot", T0, path="/ci/builders/")
    assert plain.arn == user_arn("123456789012", "alice") == "arn:aws:iam::123456789012:user/alice"
    assert nested.arn == user_arn("123456789012", "bot", "/ci/builders/")


def test_secrets_stay_out_of_reprs() -> None:
    key = AccessKey("AKIA" + "C" * 16, "AIDA" + "C" * 17, b"ciphertext", AccessKeyStatus.ACTIVE, T0)
    new = NewAccessKey(key, "the-secret-access-key")
    assert "ciphertext" not in repr(key)
    assert "the-secret-access-key" not in repr(new)
    assert "the-secret-access-key" not in str(new)
    assert new.access_key_id == key.access_key_id
    assert AccessKeyStatus.ACTIVE.value == "Active"
