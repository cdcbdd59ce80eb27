"""Pause Python's cyclic garbage collector while bulk work builds many objects.

A decision batch or a learn run keeps every row, answer and example it builds until it
ends: tens of thousands of objects that hold no reference cycles. The collector's
generational passes, triggered by those allocations, keep scanning a heap that only
grows, for no garbage: 10-20% of the work's CPU (measured by the issue 19 benchmarks).
Reference counting still frees everything; the collector runs again when the last bulk
job of the process ends. Several threads may pause it at once.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_pausers = 0
_was_enabled = False


@contextlib.contextmanager
def paused(pause: bool = True) -> Iterator[None]:
    """No cyclic collection inside the block (``pause=False``: a no-op)."""
    global _pausers, _was_enabled
    if not pause:
        yield
        return
    with _lock:
        if _pausers == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pausers += 1
    try:
        yield
    finally:
        with _lock:
            _pausers -= 1
            if _pausers == 0 and _was_enabled:
                gc.enable()
