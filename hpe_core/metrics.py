"""Performance metrics of a configuration: the daily rollups summed over a date range.

A day's ``metrics`` document (seed table ``..._metrics``) has the shape
``{"variants": {"treatment": COUNTS, "holdout": COUNTS}, "channels": {name: COUNTS},
"actions": {id: COUNTS}}`` where COUNTS is ``{decisions, engagements, reward, revenue, cost}``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from hpe_core import configs, rollups
from hpe_core.errors import InvalidInput
from hpe_core.rollups import COUNTERS
from hpe_core.stats import lift, rate
from hpe_core.workspaces import Principal

VARIANTS = ("treatment", "holdout")
DEFAULT_DAYS = 30
MAX_DAYS = 366


def resolve_range(
    date_from: dt.date | None, date_to: dt.date | None, today: dt.date
) -> tuple[dt.date, dt.date]:
    """Fill in a default range (``to``: today; ``from``: 29 days before ``to``) and check it.

    :raises InvalidInput: if ``from`` is after ``to`` or the range is over a year
    """
    span = dt.timedelta(days=DEFAULT_DAYS - 1)
    if date_to is None:
        date_to = max(today, date_from) if date_from else today
    if date_from is None:
        date_from = _shift(date_to, -span)
    if date_from > date_to:
        raise InvalidInput(
            "'from' must not be after 'to'.", {"from": ["Must be on or before 'to'."]}
        )
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise InvalidInput(
            f"A range covers at most {MAX_DAYS} days.",
            {"to": [f"At most {MAX_DAYS} days after 'from'."]},
        )
    return date_from, date_to


def _shift(day: dt.date, delta: dt.timedelta) -> dt.date:
    # Near 0001-01-01 or 9999-12-31 the default range is cut at the calendar's edge.
    try:
        return day + delta
    except OverflowError:
        return dt.date.max if delta > dt.timedelta(0) else dt.date.min


def empty_counts() -> dict:
    return {name: 0 for name in COUNTERS}


def _add(total: dict, counts: dict) -> None:
    for name in COUNTERS:
        total[name] = total.get(name, 0) + (counts.get(name) or 0)


def summarize(days: list[dict]) -> dict:
    """Sum daily metrics documents into the API's ``summary`` block."""
    per_variant = {variant: empty_counts() for variant in VARIANTS}
    for day in days:
        for variant in VARIANTS:
            _add(per_variant[variant], day.get("variants", {}).get(variant, {}))
    t, h = per_variant["treatment"], per_variant["holdout"]
    cost = t["cost"] + h["cost"]
    revenue = t["revenue"] + h["revenue"]
    return {
        "decisions": {v: int(per_variant[v]["decisions"]) for v in VARIANTS},
        "engagements": {v: int(per_variant[v]["engagements"]) for v in VARIANTS},
        "engagement_rate": {
            v: rate(per_variant[v]["engagements"], per_variant[v]["decisions"]) for v in VARIANTS
        },
        "lift": lift(
            int(t["engagements"]), int(t["decisions"]), int(h["engagements"]), int(h["decisions"])
        ).as_dict(),
        "reward": t["reward"] + h["reward"],
        "revenue": revenue,
        "cost": cost,
        "roi": (revenue - cost) / cost if cost else None,
        # How often the model's top choice matched what the baseline served (apprentice
        # mode: everyone gets the baseline in `manual`, and the holdout always does).
        "apprentice": {
            "baseline_decisions": int(t["baseline_decisions"] + h["baseline_decisions"]),
            "model_agreements": int(t["model_agreements"] + h["model_agreements"]),
            "agreement_rate": rate(
                t["model_agreements"] + h["model_agreements"],
                t["baseline_decisions"] + h["baseline_decisions"],
            ),
        },
    }


def read(
    session: Session,
    principal: Principal,
    config_id,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    today: dt.date | None = None,
) -> dict:
    """The metrics response for one configuration over an inclusive date range."""
    config = configs.get(session, principal, config_id)
    date_from, date_to = resolve_range(date_from, date_to, today or dt.datetime.now(dt.UTC).date())
    days = rollups.compute_days(session, config, date_from, date_to)
    return {
        "config_id": config.id,
        "from": date_from,
        "to": date_to,
        "summary": summarize(list(days.values())),
        "daily": [{"date": date, "metrics": document} for date, document in days.items()],
    }
