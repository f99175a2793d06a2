"""The refusal throttle: an address refused in a loop waits; an honest one never does."""

from __future__ import annotations

from moorage.protocols.connections import RefusalThrottle


def test_past_its_burst_an_address_waits_and_others_do_not() -> None:
    throttle = RefusalThrottle(burst=3, rate=1, delay=1.0)
    assert [throttle.refused("127.0.0.2", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert throttle.refused("127.0.0.2", now=0.0) == 1.0
    assert throttle.refused("127.0.0.1", now=0.0) == 0.0  # each address has its own bucket
    assert throttle.refused("127.0.0.2", now=3.0) == 0.0  # refilled at one per second
    assert throttle.refused(None, now=3.0) == 0.0


def test_a_flood_does_not_bank_a_debt_and_addresses_are_forgotten() -> None:
    throttle = RefusalThrottle(burst=2, rate=10, delay=1.0, max_addresses=2)
    for _ in range(1000):
        throttle.refused("10.0.0.1", now=0.0)
    assert throttle.refused("10.0.0.1", now=0.2) == 0.0  # 0.2 s refills it: no debt kept
    throttle.refused("10.0.0.2", now=0.2)
    throttle.refused("10.0.0.3", now=0.2)
    assert set(throttle._buckets) == {"10.0.0.2", "10.0.0.3"}
