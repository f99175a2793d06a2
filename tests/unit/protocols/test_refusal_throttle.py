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


def test_the_wait_grows_with_the_debt_which_is_bounded() -> None:
    throttle = RefusalThrottle(burst=3, rate=10, delay=1.0, max_delay=2.5, max_addresses=2)
    waits = [throttle.refused("10.0.0.1", now=0.0) for _ in range(6)]
    assert waits == [0.0, 0.0, 0.0, 1.0, 2.0, 2.5]  # a second more per refusal, capped
    for _ in range(1000):
        throttle.refused("10.0.0.1", now=0.0)
    # the debt stops at the burst: 3 refusals short, refilled in 0.4 s at 10 a second
    assert throttle.refused("10.0.0.1", now=0.4) == 0.0
    throttle.refused("10.0.0.2", now=0.4)
    throttle.refused("10.0.0.3", now=0.4)
    assert set(throttle._buckets) == {"10.0.0.2", "10.0.0.3"}  # least recently refused forgotten
