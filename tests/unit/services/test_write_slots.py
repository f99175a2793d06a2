"""Upload write slots: one account or one address fills only its own share."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from moorage.domain.errors import TooManyRequests
from moorage.services.write_slots import WriteLimits, WriteSlots


def test_one_client_fills_only_its_share() -> None:
    slots = WriteSlots(WriteLimits(total=10, per_account=6, per_client=3))
    with ExitStack() as held:
        for _ in range(3):
            held.enter_context(slots.hold("111111111111", "127.0.0.2"))
        with pytest.raises(TooManyRequests, match="this client"):
            held.enter_context(slots.hold("222222222222", "127.0.0.2"))
        # Another address of the same account still gets in, up to the account's share.
        for _ in range(3):
            held.enter_context(slots.hold("111111111111", "127.0.0.3"))
        with pytest.raises(TooManyRequests, match="this account"):
            held.enter_context(slots.hold("111111111111", "127.0.0.4"))
        # Another account is not affected, up to the total.
        for index in range(4):
            held.enter_context(slots.hold("222222222222", f"10.0.0.{index}"))
        with pytest.raises(TooManyRequests, match="uploads are being written"):
            held.enter_context(slots.hold("333333333333", "10.0.0.9"))
        assert slots.in_use == 10
    assert slots.in_use == 0
    assert not slots._accounts
    assert not slots._clients  # nothing kept for addresses no longer writing


def test_a_refusal_says_when_to_retry_and_takes_nothing() -> None:
    slots = WriteSlots(WriteLimits(total=1, per_account=1, per_client=1))
    with slots.hold("111111111111", None):
        with pytest.raises(TooManyRequests) as refused, slots.hold("111111111111", None):
            pass
        assert refused.value.detail == {"retry_after_seconds": 1}
        assert slots.in_use == 1
    assert slots.in_use == 0
