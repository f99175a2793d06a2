"""Page tokens: opaque, scoped, and refused with ECR's error when they are not ours."""

from __future__ import annotations

import pytest

from moorage.protocols.aws.errors import ApiError
from moorage.protocols.aws.pagination import decode_token, encode_token


def test_round_trip() -> None:
    token = encode_token("ListImages:1/repo", ["sha256:abc", "v1"])
    assert token is not None
    assert "sha256" not in token  # opaque to the eye, at least
    assert decode_token("ListImages:1/repo", token) == ["sha256:abc", "v1"]
    assert encode_token("ListImages:1/repo", None) is None
    assert decode_token("ListImages:1/repo", None) is None


@pytest.mark.parametrize("token", ["", "!!!", "e30", "W10", "x" * 5000])
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(ApiError) as raised:
        decode_token("ListImages:1/repo", token)
    assert raised.value.type_name == "InvalidParameterException"
    assert "nextToken" in raised.value.message


def test_a_token_of_another_scope() -> None:
    token = encode_token("ListImages:1/other", ["sha256:abc", ""])
    with pytest.raises(ApiError):
        decode_token("ListImages:1/repo", token)
