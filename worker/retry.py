"""Retry policy of background jobs (the only place it is defined)."""

from __future__ import annotations

from rq import Retry

#: Learning: the database or Redis may blip; a few spaced retries, then the sweeper
#: re-enqueues the configuration anyway on its next pass.
LEARN_MAX = 3
LEARN_INTERVALS = [5, 30, 120]


def for_learning() -> Retry:
    """The Retry a learn job returns after a transient failure (rq return-based retry)."""
    return Retry(max=LEARN_MAX, interval=list(LEARN_INTERVALS))


#: Delivery: a channel's transient failure (SMTP down, HTTP 429/5xx) is retried this many
#: times, after these delays (or after the connector's ``retry_after``); then the
#: delivery fails for good with a ``delivery.failed`` activity.
DELIVERY_MAX = 3
DELIVERY_INTERVALS = [10, 60, 300]


def delivery_attempts() -> int:
    """Attempts a delivery gets in all: the first one and its retries."""
    return 1 + DELIVERY_MAX


def for_delivery(retry_after: float | None = None) -> Retry:
    """The Retry a delivery job returns after a transient failure (rq return-based retry)."""
    if retry_after:
        return Retry(max=DELIVERY_MAX, interval=[max(1, round(retry_after))])
    return Retry(max=DELIVERY_MAX, interval=list(DELIVERY_INTERVALS))


def delivery_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before retry number ``attempt`` (1-based) of a delivery, for the inline backend."""
    if retry_after:
        return float(retry_after)
    return float(DELIVERY_INTERVALS[min(attempt, len(DELIVERY_INTERVALS)) - 1])


#: Outgoing webhooks (``/webhook-endpoints``): Standard Webhooks' schedule. After the
#: first attempt, retries after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (about 28 h in
#: all); an endpoint failing for a day is disabled before the schedule runs out.
WEBHOOK_INTERVALS = [5, 300, 1800, 7200, 18000, 36000, 36000]


def webhook_attempts() -> int:
    """Attempts an outgoing webhook message gets in all: the first one and its retries."""
    return 1 + len(WEBHOOK_INTERVALS)


def webhook_delay(attempts: int) -> float:
    """Seconds to wait after a message's ``attempts``-th failed attempt."""
    return float(WEBHOOK_INTERVALS[min(max(attempts, 1), len(WEBHOOK_INTERVALS)) - 1])
