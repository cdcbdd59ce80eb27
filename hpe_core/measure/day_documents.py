"""Daily metrics documents computed from the decision log, its outcomes and attributions.

A day's document (stored by :mod:`hpe_core.measure.rollups` in the seed's metrics table, one row
per configuration and UTC date, and computed live for days not stored)::

    {"variants": {"treatment": C, "holdout": C},
     "channels": {channel: {"treatment": C, "holdout": C}},
     "actions":  {action_id: {"treatment": C, "holdout": C}},
     "segments": {segment: {channel: {"treatment": C, "holdout": C}}},
     "sources":  {"live": C, "import": C},
     "outcomes": {type: {"treatment": n, "holdout": n}},
     "inputs_digest": "..."}

with ``C = {decisions, engagements, reward, revenue, revenue_sq, cost, baseline_decisions,
model_agreements}``. Only ``live`` decisions count in variants, channels, actions and
segments (the experiment); imported ones appear under ``sources.import`` only.

- engaged: a decision counts once if an outcome tied to it has a positive reward weight,
  or an attribution with credit > 0 gives it part of such an outcome, or (imports) it
  came with a positive reward;
- revenue: value events tied to the decision plus ``credit × value`` of attributed ones;
  ``revenue_sq`` sums each decision's revenue squared (the ROI interval needs variances);
- cost: ``decisions × (action cost + channel cost per decision)``;
- outcomes: the outcomes of the day's live decisions by type, weighted or not (a type
  that ``reward.events`` does not list is counted too, so a marketer sees it arrive):
  each outcome tied to a decision counts 1, an attributed one its credit share.

``inputs_digest`` fingerprints the settings the document was computed with (reward
weights, value events, costs, segment key): a stored day whose digest differs from the
current one is stale.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping

from sqlalchemy import Date, and_, case, cast, func, literal, or_, select, text
from sqlalchemy.orm import Session

from hpe_core.learn import rewards
from hpe_core.learn.outcomes import CLOCK_SKEW
from hpe_core.store.days import created_between, day_start
from hpe_core.store.models import Attribution, Config, Decision, Outcome

COUNTERS = (
    "decisions",
    "engagements",
    "reward",
    "revenue",
    # Σ over decisions of (that decision's revenue)²: with revenue and decisions it gives
    # the variance of revenue per decision, which the ROI interval needs.
    "revenue_sq",
    "cost",
    # Apprentice mode: decisions the baseline served, and those where the model's own top
    # choice was the same action.
    "baseline_decisions",
    "model_agreements",
)
VARIANTS = ("treatment", "holdout")
NO_SEGMENT = "(none)"
OTHER_SEGMENTS = "(other)"
#: Segment values kept per day (by decisions); the rest are summed under "(other)", so a
#: high-cardinality context key cannot blow up the stored document.
MAX_SEGMENTS = 50
DEFAULT_SEGMENT_KEY = "segment"
#: Bump when the document's definition changes: stored days then recompute themselves.
DOCUMENT_VERSION = 3
#: PostgreSQL work_mem for the aggregates (see compute_runs).
WORK_MEM = "64MB"


def empty_counts() -> dict:
    return dict.fromkeys(COUNTERS, 0)


def segment_key(settings: Mapping) -> str:
    """The context key whose value splits the ``segments`` block (``goals.segment_key``)."""
    return (settings.get("goals") or {}).get("segment_key") or DEFAULT_SEGMENT_KEY


def inputs_digest(config: Config, channel_costs: Mapping[str, float]) -> str:
    """A fingerprint of every setting a day's document depends on."""
    settings = config.settings
    reward_settings = settings["reward"]
    basis = {
        "version": DOCUMENT_VERSION,
        "positive": rewards.positive_types(reward_settings),
        "value_events": sorted(reward_settings["value_events"]),
        "action_costs": {a["id"]: float(a.get("cost") or 0.0) for a in settings["actions"]},
        "channel_costs": {
            name: float(channel_costs.get(name, 0.0)) for name in sorted(settings["channels"])
        },
        "segment_key": segment_key(settings),
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]


def compute_days(
    session: Session,
    config: Config,
    date_from: dt.date,
    date_to: dt.date,
    *,
    channel_costs: Mapping[str, float] | None = None,
) -> dict[dt.date, dict]:
    """``{date: document}`` for every day in the inclusive range that has decisions.

    :param channel_costs: channel -> cost of one decision on it (plugin settings)
    """
    return compute_runs(session, config, [(date_from, date_to)], channel_costs=channel_costs)


def compute_runs(
    session: Session,
    config: Config,
    runs: Iterable[tuple[dt.date, dt.date]],
    *,
    channel_costs: Mapping[str, float] | None = None,
) -> dict[dt.date, dict]:
    """Like :func:`compute_days` over several inclusive date ranges, in one set of queries
    (each range an index range scan), for reads that mix stored and live days."""
    runs = list(runs)
    if not runs:
        return {}
    channel_costs = channel_costs or {}
    settings = config.settings
    positive = rewards.positive_types(settings["reward"]) or ["__none__"]
    value_events = settings["reward"]["value_events"] or ["__none__"]
    action_costs = {a["id"]: float(a.get("cost") or 0.0) for a in settings["actions"]}

    if session.get_bind().dialect.name == "sqlite":
        day = func.date(Decision.created_at)  # stored as naive UTC text
    else:
        day = cast(func.timezone("UTC", Decision.created_at), Date)
        # The planner cannot estimate how few groups a day has, so with the default 4 MB
        # it sorts 100,000 rows on disk (~300 ms a day) instead of hashing them (~95 ms).
        # And JIT compiling these queries costs more than it saves (~250 ms for one day
        # at 9M decisions). LOCAL: only this transaction (a request, a rollup pass).
        session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        session.execute(text("SET LOCAL jit = off"))
    segment = Decision.context[segment_key(settings)].as_string()
    keys = (
        day.label("day"),
        Decision.variant,
        Decision.channel,
        Decision.action_id,
        Decision.source,
        segment.label("segment"),
    )
    in_range = [Decision.config_id == config.id, or_(*(created_between(a, b) for a, b in runs))]

    # Flat aggregates merged here, rather than one join with grouped outcome subqueries:
    # without planner statistics PostgreSQL ran that as a nested loop over decisions ×
    # outcomes (seconds at 10k decisions); these stay index lookups.
    connection = session.connection()
    decided = _decided(connection, keys, in_range)
    since = written_since(min(date_from for date_from, _date_to in runs))
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        # Before PostgreSQL has statistics on a new or fast-growing table (autovacuum not
        # yet run, or off) it estimates one row everywhere and nests a scan of the day's
        # decisions inside a loop over its outcomes: quadratic (0.96 s for 3,000
        # decisions and 542 outcomes). Hash joins cost little more with statistics and
        # never blow up; the setting is lifted again right after these two queries.
        session.execute(text("SET LOCAL enable_nestloop = off"))
    from_outcomes, outcome_types = _from_outcomes(
        connection, keys, in_range, config.id, since, positive, value_events
    )
    if postgres:
        session.execute(text("SET LOCAL enable_nestloop TO DEFAULT"))

    groups = []
    for row in decided:
        key = tuple(row[:6])
        engaged, revenues, squares = from_outcomes.get(key, (0, (), ()))
        decisions = int(row.decisions)
        unit_cost = action_costs.get(row.action_id, 0.0) + float(
            channel_costs.get(row.channel, 0.0)
        )
        counts = {
            "decisions": decisions,
            "engagements": engaged + int(row.engaged_by_reward or 0),
            "reward": float(row.reward or 0.0),
            # fsum: exact whatever the rows' order, so a recomputed day is identical.
            "revenue": math.fsum(revenues),
            "revenue_sq": math.fsum(squares),
            "cost": unit_cost * decisions,
            "baseline_decisions": int(row.baseline or 0),
            "model_agreements": int(row.agreements or 0),
        }
        groups.append((_as_date(row.day), row, counts))
    days = _documents(groups, inputs_digest(config, channel_costs))
    for (date, variant, type_), count in sorted(outcome_types.items()):
        document = days.get(date)
        if document is not None:  # outcomes of live decisions: their day has a document
            split = document["outcomes"].setdefault(type_, {v: 0 for v in VARIANTS})
            split[variant] = round(split[variant] + count, 9)
    return days


def _decided(connection, keys, in_range) -> list:
    """Decisions grouped by day, variant, channel, action, source and segment."""
    return connection.execute(
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


def written_since(first_day: dt.date) -> dt.datetime | None:
    """The earliest time an outcome or credit row of a decision made on or after
    ``first_day`` can carry (``received_at``, ``created_at``); None: no bound."""
    try:
        return day_start(first_day) - CLOCK_SKEW
    except OverflowError:  # a range from 0001-01-01
        return None


def _from_outcomes(
    connection, keys, in_range, config_id, since, positive, value_events
) -> tuple[dict, dict]:
    """For the decisions with outcomes or attributed credit:
    ``{group key: [engaged decisions, [revenue per decision], [its square]]}``, and
    ``{(date, variant, type): outcomes}`` of the live ones (an outcome tied to a decision
    counts 1, an attributed one its credit).

    :param since: only outcomes received and credit given from then on can belong to
        the decisions in range (:func:`written_since`); None reads them all
    """
    # Per decision and outcome type: engaged? revenue? how many? Direct outcomes and
    # attributed credit are two queries, merged per decision below (a decision can have
    # both); grouping by type too costs a few more rows, not a third scan. Each starts
    # from this config's rows written since the range began (an index range scan), not
    # from every outcome or credit row it ever had.
    received = [Outcome.config_id == config_id]
    credited = [Attribution.config_id == config_id]
    if since is not None:
        received.append(Outcome.received_at >= since)
        credited.append(Attribution.created_at >= since)
    per_decision: dict = {}
    direct = connection.execute(
        select(
            Decision.id,
            *keys,
            func.max(case((Outcome.type.in_(positive), 1), else_=0)).label("engaged"),
            func.sum(
                case(
                    (Outcome.type.in_(value_events), func.coalesce(Outcome.value, 0.0)),
                    else_=0.0,
                )
            ).label("revenue"),
            Outcome.type,
            func.count().label("n"),
        )
        .select_from(Outcome)
        .join(Decision, Decision.id == Outcome.decision_id)
        .where(*received, *in_range, Decision.given_reward.is_(None))
        .group_by(Decision.id, Outcome.type)
    ).all()
    attributed = connection.execute(
        select(
            Decision.id,
            *keys,
            func.max(
                case((and_(Outcome.type.in_(positive), Attribution.credit > 0), 1), else_=0)
            ).label("engaged"),
            func.sum(
                case(
                    (
                        Outcome.type.in_(value_events),
                        Attribution.credit * func.coalesce(Outcome.value, 0.0),
                    ),
                    else_=0.0,
                )
            ).label("revenue"),
            func.max(case((Decision.given_reward > 0, 1), else_=0)).label("given_positive"),
            Outcome.type,
            func.sum(Attribution.credit).label("n"),
        )
        .select_from(Attribution)
        .join(Decision, Decision.id == Attribution.decision_id)
        .join(Outcome, Outcome.id == Attribution.outcome_id)
        .where(*credited, *in_range)
        .group_by(Decision.id, Outcome.type)
    ).all()
    outcome_types: dict[tuple, float] = defaultdict(float)
    for rows, from_attribution in ((direct, False), (attributed, True)):
        for row in rows:
            entry = per_decision.setdefault(row.id, [tuple(row[1:7]), False, 0.0])
            # An import engaged by its given reward is counted already (first query).
            counted = from_attribution and bool(row.given_positive)
            entry[1] = entry[1] or (bool(row.engaged) and not counted)
            entry[2] += float(row.revenue or 0.0)
            if row.source == "live":
                outcome_types[(_as_date(row.day), row.variant, row.type)] += float(row.n or 0)
    from_outcomes: dict[tuple, list] = {}
    for key, engaged, revenue in per_decision.values():
        total = from_outcomes.setdefault(key, [0, [], []])
        total[0] += engaged
        total[1].append(revenue)
        total[2].append(revenue * revenue)
    whole = {key: int(n) if n.is_integer() else n for key, n in outcome_types.items()}
    return from_outcomes, whole


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _documents(groups: list[tuple], digest: str) -> dict[dt.date, dict]:
    """Fold grouped rows into one document per day."""
    groups.sort(key=lambda g: (g[0], tuple(str(part) for part in g[1][1:6])))
    segment_totals: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for date, row, counts in groups:
        if row.source == "live":
            segment_totals[date][_segment_value(row.segment)] += counts["decisions"]
    kept = {
        date: {
            value
            for value, _n in sorted(totals.items(), key=lambda i: (-i[1], i[0]))[:MAX_SEGMENTS]
        }
        for date, totals in segment_totals.items()
    }
    days: dict[dt.date, dict] = {}
    for date, row, counts in groups:
        document = days.get(date)
        if document is None:
            document = days[date] = {
                "variants": {v: empty_counts() for v in VARIANTS},
                "channels": {},
                "actions": {},
                "segments": {},
                "sources": {},
                "outcomes": {},
                "inputs_digest": digest,
            }
        _add(document["sources"], row.source, counts)
        if row.source != "live":
            continue
        _add(document["variants"], row.variant, counts)
        _add(_split(document["channels"], row.channel), row.variant, counts)
        _add(_split(document["actions"], row.action_id), row.variant, counts)
        value = _segment_value(row.segment)
        value = value if value in kept[date] else OTHER_SEGMENTS
        by_channel = document["segments"].setdefault(value, {})
        _add(_split(by_channel, row.channel), row.variant, counts)
    for document in days.values():
        _round_floats(document)
    return dict(sorted(days.items()))


def _segment_value(raw) -> str:
    return NO_SEGMENT if raw is None else str(raw)[:128]


def _split(block: dict, key: str) -> dict:
    """``block[key]`` as ``{"treatment": C, "holdout": C}``, created with zeros."""
    found = block.get(key)
    if found is None:
        found = block[key] = {v: empty_counts() for v in VARIANTS}
    return found


def _add(block: dict, key: str, counts: Mapping) -> None:
    total = block.setdefault(key, empty_counts())
    for name in COUNTERS:
        total[name] += counts.get(name) or 0


def _round_floats(node: dict) -> None:
    # Sums of floats in SQL may differ in the last bits from run to run (aggregation
    # order); rounding far below a cent keeps a recomputed day identical.
    for key, value in node.items():
        if isinstance(value, dict):
            _round_floats(value)
        elif isinstance(value, float):
            node[key] = round(value, 9)
