"""Retry policy of background jobs (the only place it is defined)."""

from __future__ import annotations

from rq import Retry

#: Learning: the database or Redis may blip; a few spaced retries, then the sweeper
#: re-enqueues the configuration anyway on its next pass.
LEARN_MAX = 3
LEARN_INTERVALS = [5, 30, 120]


def for_learning() -> Retry:
    return Retry(max=LEARN_MAX, interval=LEARN_INTERVALS)
