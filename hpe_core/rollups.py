"""Daily metrics documents computed from the decision log and its outcomes.

One aggregate query groups a date range's decisions by day, variant, channel, action and
source, joined with a per-decision digest of outcomes (engaged? revenue?). The result is
the per-day document that the seed's metrics table stores:
``{"variants": {...}, "channels": {...}, "actions": {...}, "sources": {...}}``, each
leaf ``{decisions, engagements, reward, revenue, cost}``. Only ``live`` decisions count in
``variants`` (the experiment); imported ones appear under ``sources.import``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import Date, and_, case, cast, distinct, func, literal, select
from sqlalchemy.orm import Session

from hpe_core import rewards
from hpe_core.models import Config, Decision, Outcome

COUNTERS = (
    "decisions",
    "engagements",
    "reward",
    "revenue",
    "cost",
    # Apprentice mode: decisions the baseline served, and those where the model's own top
    # choice was the same action.
    "baseline_decisions",
    "model_agreements",
)


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def compute_days(session: Session, config: Config, date_from: dt.date, date_to: dt.date) -> dict:
    """``{date: document}`` for every day in the range that has decisions."""
    reward_settings = config.settings["reward"]
    positive = rewards.positive_types(reward_settings) or ["__none__"]
    value_events = reward_settings["value_events"] or ["__none__"]
    costs = {a["id"]: float(a.get("cost") or 0.0) for a in config.settings["actions"]}

    if session.get_bind().dialect.name == "sqlite":
        day = func.date(Decision.created_at)  # stored as naive UTC text
    else:
        day = cast(func.timezone("UTC", Decision.created_at), Date)
    keys = (
        day.label("day"),
        Decision.variant,
        Decision.channel,
        Decision.action_id,
        Decision.source,
    )
    in_range = [
        Decision.config_id == config.id,
        Decision.created_at >= _day_start(date_from),
        # The day after 9999-12-31 does not exist: that range is open-ended.
        Decision.created_at < _day_start(date_to + dt.timedelta(days=1))
        if date_to < dt.date.max
        else literal(True),
    ]
    # Two flat aggregates merged here, rather than one join with a grouped outcome
    # subquery: without planner statistics PostgreSQL ran that as a nested loop over
    # decisions × outcomes (seconds at 10k decisions); these stay index lookups.
    decided = session.execute(
        select(
            *keys,
            func.count().label("decisions"),
            # An imported decision may carry a reward instead of events: positive =
            # engaged, as learning counts it.
            func.sum(case((Decision.given_reward > 0, 1), else_=0)).label("engaged_by_reward"),
            func.coalesce(func.sum(Decision.reward), literal(0.0)).label("reward"),
            func.sum(case((Decision.policy == "baseline", 1), else_=0)).label("baseline"),
            func.sum(
                case(
                    (
                        and_(
                            Decision.policy == "baseline",
                            Decision.model_action_id == Decision.action_id,
                        ),
                        1,
                    ),
                    else_=0,
                )
            ).label("agreements"),
        )
        .where(*in_range)
        .group_by(*keys)
    ).all()
    outcome_rows = session.execute(
        select(
            *keys,
            func.count(
                distinct(case((Outcome.type.in_(positive), Outcome.decision_id), else_=None))
            ).label("engaged"),
            func.coalesce(
                func.sum(
                    case(
                        (Outcome.type.in_(value_events), func.coalesce(Outcome.value, 0.0)),
                        else_=0.0,
                    )
                ),
                literal(0.0),
            ).label("revenue"),
        )
        .select_from(Outcome)
        .join(Decision, Decision.id == Outcome.decision_id)
        # No filter on Outcome.config_id: the decisions' filter implies it, and leaving it
        # out lets the join probe outcomes by decision_id (an index) for each decision.
        .where(*in_range)
        .group_by(*keys)
    ).all()
    from_outcomes = {
        tuple(row[:5]): (int(row.engaged or 0), float(row.revenue or 0.0)) for row in outcome_rows
    }

    days: dict[dt.date, dict] = defaultdict(
        lambda: {"variants": {}, "channels": {}, "actions": {}, "sources": {}}
    )
    for row in decided:
        date = row.day if isinstance(row.day, dt.date) else dt.date.fromisoformat(row.day)
        engaged, revenue = from_outcomes.get(tuple(row[:5]), (0, 0.0))
        counts = {
            "decisions": int(row.decisions),
            "engagements": engaged + int(row.engaged_by_reward or 0),
            "reward": float(row.reward or 0.0),
            "revenue": revenue,
            "baseline_decisions": int(row.baseline or 0),
            "model_agreements": int(row.agreements or 0),
            "cost": costs.get(row.action_id, 0.0) * int(row.decisions),
        }
        document = days[date]
        if row.source == "live":
            _add(document["variants"], row.variant, counts)
            _add(document["channels"], row.channel, counts)
            _add(document["actions"], row.action_id, counts)
        _add(document["sources"], row.source, counts)
    return dict(sorted(days.items()))


def _add(block: dict, key: str, counts: dict) -> None:
    total = block.setdefault(key, dict.fromkeys(COUNTERS, 0))
    for name in COUNTERS:
        total[name] += counts[name]
