"""The share and budget guardrails: a per-process cache of today's counts and the spend.

``guardrails.max_action_share`` and ``guardrails.budget`` need counts over many decisions
(today's decisions per action, the spend of the budget period). Counting on every decision
would put a read on the hot path (DESIGN.md §7: one INSERT, no read-modify-write), so each
process keeps :class:`UsageCache`: per configuration, the counts read with one grouped
query at most every ``refresh_interval`` seconds (:data:`REFRESH_SECONDS`), plus this
process's own decisions since (:meth:`UsageCache.note`), so a burst in one process cannot
overshoot by much.

Soft cap, stated plainly: other processes' decisions are seen only at the next refresh.
With N API processes the share and the budget can be overshot by up to N × (decisions one
process makes in ``refresh_interval`` seconds). A hard cap would need a shared counter
updated by every decision, which is the read-modify-write the hot path forbids.

The checks themselves (:func:`over_share`, :func:`affordable`) are pure functions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterable, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hpe_core.store.days import created_between
from hpe_core.store.models import Config, Decision
from hpe_core.store.vocabulary import DecisionSource
from hpe_core.tenancy.settings_types import Action, BudgetPeriod, Settings

#: Seconds a configuration's counts are trusted before one grouped query refreshes them.
REFRESH_SECONDS = 5.0
#: Past days' spend (month, total budgets) only changes when the action or channel costs
#: change (past live decisions are final), so it is re-read much less often.
PAST_SPEND_REFRESH_SECONDS = 300.0
#: Shares count once this many decisions were made today: the first decisions of a day
#: would otherwise trip the cap at once (the very first one is a 100% share). At 100 a
#: share is known to within about ±10 points (binomial, 95%), fine for a safety cap.
MIN_DECISIONS_FOR_SHARE = 100

_DECISIONS = Decision.__table__


# --- Pure checks ----------------------------------------------------------------------------


def over_share(
    counts: Mapping[str, int],
    max_share: float | None,
    *,
    min_decisions: int = MIN_DECISIONS_FOR_SHARE,
) -> set[str]:
    """The actions whose share of today's decisions has reached ``max_share``.

    :param counts: action id -> today's live decisions (all variants)
    :param max_share: ``guardrails.max_action_share`` (None: no cap; 1: no action can
        exceed it, so none is excluded)
    :param min_decisions: below this many decisions in total nothing is excluded
    :returns: the action ids not eligible for treatment decisions
    """
    total = sum(counts.values())
    if max_share is None or max_share >= 1 or total < min_decisions:
        return set()
    return {action for action, count in counts.items() if count / total >= max_share}


def unit_cost(action: Action | None, channel: str, channel_costs: Mapping[str, float]) -> float:
    """One decision's cost: the action's ``cost`` plus the channel's cost per decision.

    :param action: None for an action no longer in the settings (it costs nothing more)
    """
    action_cost = action.cost if action is not None else 0.0
    return action_cost + float(channel_costs.get(channel, 0.0))


def affordable(
    eligible: Iterable[str], costs: Mapping[str, float], spend: float, amount: float
) -> list[str]:
    """The eligible actions whose cost still fits the budget (order kept).

    :param costs: action id -> the cost of one decision of it on this channel
    :param spend: spent so far in the budget period
    :param amount: ``guardrails.budget.amount``
    """
    # A small tolerance: 10 × 0.1 must fit a budget of 1.0 despite float rounding.
    return [a for a in eligible if spend + costs[a] <= amount + 1e-9]


def period_start(period: BudgetPeriod, today: dt.date) -> dt.date | None:
    """First day of the budget period holding ``today`` (None: ``total``, all time)."""
    if period == BudgetPeriod.DAY:
        return today
    if period == BudgetPeriod.MONTH:
        return today.replace(day=1)
    return None


# --- The per-process cache -------------------------------------------------------------------


@dataclasses.dataclass
class Usage:
    """One configuration's counts for one UTC day, as this process knows them."""

    day: dt.date
    counts: dict[str, int]  # action id -> today's live decisions
    today_spend: float
    past_spend: float  # earlier days of the budget period (0 for a daily budget)
    loaded_at: float
    past_loaded_at: float

    @property
    def spend(self) -> float:
        return self.past_spend + self.today_spend


class UsageCache:
    """Today's decisions per action and the budget period's spend, per configuration.

    :param refresh_interval: seconds between two reads of one configuration's counts (0 in
        tests: every decision reads them)
    :param channel_costs: channel -> cost per decision (the connectors' settings)
    """

    def __init__(
        self, *, refresh_interval: float = REFRESH_SECONDS, channel_costs: Mapping | None = None
    ):
        self.refresh_interval = refresh_interval
        self.channel_costs = dict(channel_costs or {})
        self._usage: dict[uuid.UUID, Usage] = {}
        self._exhausted: set[tuple[uuid.UUID, str]] = set()
        self._lock = threading.Lock()

    def usage(
        self, session: Session, config_id: uuid.UUID, settings: Settings, now: dt.datetime
    ) -> Usage:
        """The cached counts, re-read when older than the interval or of another day."""
        today = now.astimezone(dt.UTC).date()
        clock = time.monotonic()
        with self._lock:
            usage = self._usage.get(config_id)
        if (
            usage is not None
            and usage.day == today
            and clock - usage.loaded_at <= self.refresh_interval
        ):
            return usage
        # Two threads may both refresh: harmless, the later answer wins.
        counts, today_spend = self._today(session, config_id, settings, today)
        past_spend, past_loaded_at = 0.0, clock
        budget = settings.guardrails.budget
        if budget is not None and budget.period != BudgetPeriod.DAY:
            if (
                usage is not None
                and usage.day == today
                and clock - usage.past_loaded_at
                <= max(self.refresh_interval, PAST_SPEND_REFRESH_SECONDS)
            ):
                past_spend, past_loaded_at = usage.past_spend, usage.past_loaded_at
            else:
                past_spend = self._past_spend(session, config_id, budget.period, today)
        fresh = Usage(today, counts, today_spend, past_spend, clock, past_loaded_at)
        with self._lock:
            self._usage[config_id] = fresh
        return fresh

    def note(self, config_id: uuid.UUID, action_id: str, cost: float, now: dt.datetime) -> None:
        """Count one decision this process just logged, until the next refresh reads it."""
        with self._lock:
            usage = self._usage.get(config_id)
            if usage is None or usage.day != now.astimezone(dt.UTC).date():
                return
            usage.counts[action_id] = usage.counts.get(action_id, 0) + 1
            usage.today_spend += cost

    def first_exhaustion(self, config_id: uuid.UUID, period_key: str) -> bool:
        """True the first time this process sees the budget exhausted in this period."""
        with self._lock:
            if (config_id, period_key) in self._exhausted:
                return False
            self._exhausted.add((config_id, period_key))
            return True

    def forget_exhaustion(self, config_id: uuid.UUID, period_key: str) -> None:
        """Undo :meth:`first_exhaustion` (its activity could not be written)."""
        with self._lock:
            self._exhausted.discard((config_id, period_key))

    def invalidate(self, config_id: uuid.UUID) -> None:
        with self._lock:
            self._usage.pop(config_id, None)

    def _today(
        self, session: Session, config_id: uuid.UUID, settings: Settings, today: dt.date
    ) -> tuple[dict[str, int], float]:
        # One grouped query over today's live decisions; ix_041_hpe_decisions_created
        # (config_id, created_at) covers the range.
        rows = session.execute(
            select(_DECISIONS.c.action_id, _DECISIONS.c.channel, func.count().label("decisions"))
            .where(
                _DECISIONS.c.config_id == config_id,
                created_between(today, today),
                _DECISIONS.c.source == DecisionSource.LIVE,
            )
            .group_by(_DECISIONS.c.action_id, _DECISIONS.c.channel)
        ).all()
        actions = settings.actions_by_id
        counts: dict[str, int] = {}
        spend = 0.0
        for row in rows:
            counts[row.action_id] = counts.get(row.action_id, 0) + row.decisions
            cost = unit_cost(actions.get(row.action_id), row.channel, self.channel_costs)
            spend += row.decisions * cost
        return counts, spend

    def _past_spend(
        self, session: Session, config_id: uuid.UUID, period: BudgetPeriod, today: dt.date
    ) -> float:
        """Spend of the period's days before today, from the stored daily rollups."""
        # Imported here: rollups pulls in the day documents, needed only for these budgets.
        from hpe_core.measure.rollups import read as read_rollups

        first = period_start(period, today)
        if first is None:  # total: from the first live decision on
            oldest = session.scalar(
                select(func.min(_DECISIONS.c.created_at)).where(
                    _DECISIONS.c.config_id == config_id,
                    _DECISIONS.c.source == DecisionSource.LIVE,
                )
            )
            if oldest is None:
                return 0.0
            if isinstance(oldest, dt.datetime) and oldest.tzinfo is not None:
                oldest = oldest.astimezone(dt.UTC)
            first = oldest.date()
        yesterday = today - dt.timedelta(days=1)
        if first > yesterday:
            return 0.0
        config = session.get(Config, config_id)
        days = read_rollups(session, config, first, yesterday, channel_costs=self.channel_costs)
        return sum(
            float(counters.get("cost", 0.0))
            for day in days
            for counters in day.document.variants.values()
        )
