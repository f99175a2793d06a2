"""Pause Python's cyclic garbage collector while a bulk step builds many objects.

Reading and evaluating 100,000 lifecycle candidates allocates about half a million objects.
Each allocation burst makes the cyclic collector scan the young generations, and the growth
of the heap triggers full collections, each a pause of a few hundred milliseconds on the
event loop; together about a third of the step's CPU. The objects built are acyclic (tuples,
frozensets, digests), so reference counting frees them and the collector finds nothing.

:func:`cyclic_gc_paused` turns the collector off for the block and back on at the end of
the last overlapping block (steps run concurrently on the loop and in threads). It never
turns on a collector that was off before the first block.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Run the block with the cyclic garbage collector disabled (reference counting goes on)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
