"""The cyclic collector pauses for bulk steps and comes back when the last one ends."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from moorage.services.allocation import cyclic_gc_paused


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_off_inside_and_on_after() -> None:
    gc.enable()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_blocks_turn_it_on_only_at_the_end_of_the_last() -> None:
    gc.enable()
    first = cyclic_gc_paused()
    second = cyclic_gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with cyclic_gc_paused():
        pass
    assert not gc.isenabled()


def test_an_error_inside_still_turns_it_back_on() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
