"""Rate limits per API key and per workspace (issue 14, defect 5).

Counted in Redis when ``REDIS_URL`` is set, so every API process and machine shares the
counts; in this process's memory on the embedded default (one machine: ``hpe serve``'s
workers each count their own share, so the effective limit is up to workers × the
setting). The ``limits`` library (flask-limiter's core) keeps fixed windows: cheap (one
Redis round trip for both counters) and exact within a window.

A request over a limit is a 429 with ``Retry-After`` (seconds until its window resets) in
the one JSON error shape. If Redis is unreachable the counts fall back to memory in each
process until it answers again: limits must never take decisions down with Redis.

Settings (``web.config.DefaultConfig``): ``RATE_LIMIT_PER_KEY`` and
``RATE_LIMIT_PER_WORKSPACE`` in the ``limits`` notation (``"500/second"``, several joined
by ``;``: ``"500/second;20000/minute"``; empty: no limit), and ``WORKSPACE_LIMITS`` to
give one workspace others: ``{"acme": {"per_key": "2000/second", "per_workspace": ""}}``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from hpe_core.errors import RateLimited
from hpe_core.tenancy.workspaces import Principal

log = logging.getLogger(__name__)

#: After Redis failed, count in memory this long before trying it again.
REDIS_RETRY_SECONDS = 5.0


class RateLimits:
    """The limits of one app: :meth:`check` each authenticated request."""

    def __init__(self, settings: Mapping, redis_url: str | None):
        self._per_key = _parse(settings.get("RATE_LIMIT_PER_KEY"))
        self._per_workspace = _parse(settings.get("RATE_LIMIT_PER_WORKSPACE"))
        self._workspaces = {
            workspace_id: (
                _parse(overrides.get("per_key", settings.get("RATE_LIMIT_PER_KEY"))),
                _parse(overrides.get("per_workspace", settings.get("RATE_LIMIT_PER_WORKSPACE"))),
            )
            for workspace_id, overrides in (settings.get("WORKSPACE_LIMITS") or {}).items()
        }
        self._memory = FixedWindowRateLimiter(MemoryStorage())
        self._shared = None
        if redis_url:
            storage = storage_from_string(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
            self._shared = FixedWindowRateLimiter(storage)
        self._redis_down_until = 0.0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._per_key or self._per_workspace or self._workspaces)

    def limits_of(self, workspace_id: str) -> tuple[list[RateLimitItem], list[RateLimitItem]]:
        """``(per key, per workspace)`` limits of a workspace."""
        return self._workspaces.get(workspace_id, (self._per_key, self._per_workspace))

    def check(self, principal: Principal) -> None:
        """Count one request of ``principal``'s key and workspace.

        :raises RateLimited: over a limit (``retry_after``: seconds until it resets)
        """
        per_key, per_workspace = self.limits_of(principal.workspace_id)
        hits = [(item, "key", principal.actor) for item in per_key]
        hits += [(item, "workspace", principal.workspace_id) for item in per_workspace]
        for item, scope, subject in hits:
            if not self._hit(item, scope, subject):
                reset = self._reset_at(item, scope, subject)
                raise RateLimited(
                    f"Too many requests for this {'API key' if scope == 'key' else 'workspace'} "
                    f"({item}); retry after the Retry-After seconds.",
                    {"rate_limit": [f"{scope}: {item}"]},
                    retry_after=max(1.0, math.ceil(reset - time.time())),
                )

    def _limiter(self) -> FixedWindowRateLimiter:
        if self._shared is not None and time.monotonic() >= self._redis_down_until:
            return self._shared
        return self._memory

    def _hit(self, item: RateLimitItem, scope: str, subject: str) -> bool:
        limiter = self._limiter()
        try:
            return limiter.hit(item, "hpe", scope, subject)
        except Exception as exc:  # noqa: BLE001 - any Redis failure: count in memory
            if limiter is self._memory:
                raise
            with self._lock:
                if time.monotonic() >= self._redis_down_until:
                    log.warning(
                        "rate limits counted in memory for %.0f s: Redis failed (%s)",
                        REDIS_RETRY_SECONDS,
                        exc,
                    )
                self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            return self._memory.hit(item, "hpe", scope, subject)

    def _reset_at(self, item: RateLimitItem, scope: str, subject: str) -> float:
        try:
            return self._limiter().get_window_stats(item, "hpe", scope, subject).reset_time
        except Exception:  # noqa: BLE001 - the window's own length is a fair answer
            return time.time() + item.get_expiry()


def _parse(text: str | None) -> list[RateLimitItem]:
    if not text:
        return []
    return list(parse_many(str(text)))


_create = threading.Lock()


def rate_limits(app) -> RateLimits:
    """The app's limits, made on first use from its settings."""
    found = app.extensions.get("hpe_rate_limits")
    if found is None:
        with _create:
            found = app.extensions.get("hpe_rate_limits")
            if found is None:
                found = app.extensions["hpe_rate_limits"] = RateLimits(
                    app.config, app.config.get("REDIS_URL")
                )
    return found
