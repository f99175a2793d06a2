"""Layer download tokens: bound to one blob, authenticated, and short-lived."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from moorage.iam.download_tokens import (
    DownloadTokenExpired,
    DownloadTokenInvalid,
    DownloadTokens,
)

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64


def test_round_trip_for_an_hour() -> None:
    tokens = DownloadTokens(secrets.token_bytes(32))
    token, expires = tokens.issue("123456789012", "team/app", DIGEST, NOW)
    assert expires == NOW + timedelta(hours=1)
    claims = tokens.verify(token, NOW + timedelta(minutes=59))
    assert (claims.registry_id, claims.repository, claims.digest) == (
        "123456789012",
        "team/app",
        DIGEST,
    )
    with pytest.raises(DownloadTokenExpired):
        tokens.verify(token, expires)


def test_another_key_or_an_altered_token_is_refused() -> None:
    tokens = DownloadTokens(secrets.token_bytes(32))
    token, _ = tokens.issue("123456789012", "team/app", DIGEST, NOW)
    with pytest.raises(DownloadTokenInvalid):
        DownloadTokens(secrets.token_bytes(32)).verify(token, NOW)
    altered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for bad in (altered, "", "not a token!", "A" * 5000, token[:10]):
        with pytest.raises(DownloadTokenInvalid):
            tokens.verify(bad, NOW)


def test_naive_times_are_refused() -> None:
    tokens = DownloadTokens(secrets.token_bytes(32))
    with pytest.raises(ValueError, match="timezone-aware"):
        tokens.issue("123456789012", "team/app", DIGEST, NOW.replace(tzinfo=None))
