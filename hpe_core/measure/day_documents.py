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

import dataclasses
import datetime as dt
import hashlib
import json
import math
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

from sqlalchemy import (
    Date,
    Uuid,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from hpe_core.learn import rewards
from hpe_core.learn.outcomes import CLOCK_SKEW
from hpe_core.measure.day_counts import (
    MAX_SEGMENTS,
    VARIANTS,
    add_counts,
    empty_counts,
    split_of,
)
from hpe_core.measure.exact import ExactSum
from hpe_core.results import NO_SEGMENT, OTHER_SEGMENTS
from hpe_core.store.days import created_between, day_start
from hpe_core.store.models import Attribution, Config, Decision, Outcome
from hpe_core.store.vocabulary import DecisionSource, Policy
from hpe_core.tenancy.configs import settings_of
from hpe_core.tenancy.settings_types import Settings

#: Bump when the document's definition changes: stored days then recompute themselves.
DOCUMENT_VERSION = 3
#: PostgreSQL work_mem for the aggregates (see compute_runs).
WORK_MEM = "64MB"
#: Live decisions (the experiment), as the plain string compared once per row.
_LIVE = DecisionSource.LIVE.value
#: Decision ids per IN list (:func:`outcome_rows_of`).
_IDS_PER_QUERY = 1000


# --- Settings the documents depend on -------------------------------------------------------


def inputs_digest(config: Config, channel_costs: Mapping[str, float]) -> str:
    """A fingerprint of every setting a day's document depends on."""
    settings = settings_of(config)
    basis = {
        "version": DOCUMENT_VERSION,
        "positive": rewards.positive_types(settings.reward),
        "value_events": sorted(settings.reward.value_events),
        "action_costs": {action.id: action.cost for action in settings.actions},
        "channel_costs": {
            name: float(channel_costs.get(name, 0.0)) for name in sorted(settings.channels)
        },
        "segment_key": settings.goals.segment_key,
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]


# --- Computing documents ------------------------------------------------------------------


class GroupKey(NamedTuple):
    """What decisions are grouped by: the selected columns of the same names. ``day`` is
    the UTC date (or, for :mod:`hpe_core.measure.hours`, the UTC hour) of the group."""

    day: object
    variant: str
    channel: str
    action_id: str
    source: str
    segment: object


_group_key_of = operator.attrgetter(*GroupKey._fields)


def _group_key_reader(rows: Sequence) -> Callable[[object], tuple]:
    """For rows of one query, a function that reads each row's group key as a plain tuple
    (equal to its :class:`GroupKey`): the columns are found by name once, then read by
    position, because the outcome queries return a row per decision and outcome type."""
    if not rows:
        return _group_key_of
    names = rows[0]._fields
    return operator.itemgetter(*(names.index(name) for name in GroupKey._fields))


class _Group(NamedTuple):
    date: dt.date
    key: GroupKey
    counts: dict


@dataclasses.dataclass(slots=True)
class Decided:
    """The decision-side counts of one group (a row of :func:`decided`, or several added
    up: one per hour). ``reward`` adds each row's sum of rewards exactly."""

    decisions: int = 0
    engaged_by_reward: int = 0
    reward: ExactSum = dataclasses.field(default_factory=ExactSum)
    baseline: int = 0
    agreements: int = 0

    def add_row(self, row) -> None:
        self.add(
            int(row.decisions),
            int(row.engaged_by_reward or 0),
            float(row.reward or 0.0),
            int(row.baseline or 0),
            int(row.agreements or 0),
        )

    def add(self, decisions, engaged_by_reward, reward: float, baseline, agreements) -> None:
        self.decisions += decisions
        self.engaged_by_reward += engaged_by_reward
        self.reward.add_float(reward)
        self.baseline += baseline
        self.agreements += agreements

    def merge(self, other: Decided) -> None:
        """Add another group's counts (a stored hour's)."""
        self.decisions += other.decisions
        self.engaged_by_reward += other.engaged_by_reward
        self.reward.add(other.reward)
        self.baseline += other.baseline
        self.agreements += other.agreements


@dataclasses.dataclass(slots=True)
class DecisionRecord:
    """One decision's outcomes and attributed credit, merged: whether it engaged, and the
    parts of its revenue and of its outcomes per type, one per outcome or credit row (an
    outcome tied to it counts 1, an attributed one its credit). Parts are added with
    ``fsum``, so the same rows give the same sums whatever their order or grouping.
    ``key`` is its group's :class:`GroupKey`."""

    key: GroupKey
    engaged: bool = False
    revenue_parts: list[float] = dataclasses.field(default_factory=list)
    types: dict[str, list[float]] = dataclasses.field(default_factory=dict)

    @property
    def revenue(self) -> float:
        return math.fsum(self.revenue_parts)

    def add(self, row, *, from_attribution: bool) -> None:
        """Add one row of :func:`outcome_rows` (or :func:`recent_rows`)."""
        # An import engaged by its given reward is counted already (see decided).
        counted = from_attribution and bool(row.given_positive)
        self.engaged = self.engaged or (bool(row.engaged) and not counted)
        self.revenue_parts.append(float(row.revenue or 0.0))
        parts = self.types.get(row.type)
        if parts is None:
            parts = self.types[row.type] = []
        parts.append(float(row.n or 0))


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
    settings = settings_of(config)
    keys = group_columns(session, settings)
    in_range = [Decision.config_id == config.id, or_(*(created_between(a, b) for a, b in runs))]
    # Flat aggregates merged here, rather than one join with grouped outcome subqueries:
    # without planner statistics PostgreSQL ran that as a nested loop over decisions ×
    # outcomes (seconds at 10k decisions); these stay index lookups.
    counts = decided_counts(decided(session, keys, in_range), as_date)
    since = written_since(min(date_from for date_from, _date_to in runs))
    direct, attributed = outcome_rows(session, keys, in_range, config.id, since, settings)
    records = decision_records(direct, attributed, as_date)
    return build_documents(
        counts,
        records.values(),
        unit_costs(settings, channel_costs),
        inputs_digest(config, channel_costs),
    )


def group_columns(session: Session, settings: Settings, *, hourly: bool = False) -> tuple:
    """The columns decisions are grouped by (named as :class:`GroupKey`'s fields; ``day``
    is the UTC hour when ``hourly``); on PostgreSQL also this transaction's settings for
    the aggregates."""
    if session.get_bind().dialect.name == "sqlite":
        # Stored as naive UTC text.
        if hourly:
            day = func.strftime("%Y-%m-%d %H:00:00", Decision.created_at)
        else:
            day = func.date(Decision.created_at)
    else:
        utc = func.timezone("UTC", Decision.created_at)
        day = func.date_trunc("hour", utc) if hourly else cast(utc, Date)
        # The planner cannot estimate how few groups a day has, so with the default 4 MB
        # it sorts 100,000 rows on disk (~300 ms a day) instead of hashing them (~95 ms).
        # And JIT compiling these queries costs more than it saves (~250 ms for one day
        # at 9M decisions). LOCAL: only this transaction (a request, a rollup pass).
        session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        session.execute(text("SET LOCAL jit = off"))
    segment = Decision.context[settings.goals.segment_key].as_string()
    return (
        day.label("day"),
        Decision.variant,
        Decision.channel,
        Decision.action_id,
        Decision.source,
        segment.label("segment"),
    )


def unit_costs(settings: Settings, channel_costs: Mapping[str, float]):
    """``cost(action_id, channel)`` of one decision: the action's cost plus the channel's."""
    action_costs = {action.id: action.cost for action in settings.actions}

    def cost(action_id: str, channel: str) -> float:
        return action_costs.get(action_id, 0.0) + float(channel_costs.get(channel, 0.0))

    return cost


def decided(session: Session, keys, in_range) -> list:
    """Decisions grouped by day (or hour), variant, channel, action, source and segment."""
    baseline = Decision.policy == Policy.BASELINE
    agrees = and_(baseline, Decision.model_action_id == Decision.action_id)
    statement = (
        select(
            *keys,
            func.count().label("decisions"),
            # An imported decision may carry a reward instead of events: positive =
            # engaged, as learning counts it.
            func.sum(case((Decision.given_reward > 0, 1), else_=0)).label("engaged_by_reward"),
            func.coalesce(func.sum(Decision.reward), literal(0.0)).label("reward"),
            func.sum(case((baseline, 1), else_=0)).label("baseline"),
            func.sum(case((agrees, 1), else_=0)).label("agreements"),
        )
        .where(*in_range)
        .group_by(*keys)
    )
    return session.connection().execute(statement).all()


def decided_counts(rows: Iterable, day_of: Callable[[object], object]) -> dict[GroupKey, Decided]:
    """The rows of :func:`decided` by group, their ``day`` read with ``day_of``."""
    counts: dict[GroupKey, Decided] = {}
    for row in rows:
        key = GroupKey(day_of(row.day), *_group_key_of(row)[1:])
        found = counts.get(key)
        if found is None:
            found = counts[key] = Decided()
        found.add_row(row)
    return counts


def written_since(first_day: dt.date) -> dt.datetime | None:
    """The earliest time an outcome or credit row of a decision made on or after
    ``first_day`` can carry (``received_at``, ``created_at``); None: no bound."""
    try:
        return day_start(first_day) - CLOCK_SKEW
    except OverflowError:  # a range from 0001-01-01
        return None


# --- Outcomes and attributed credit of the decisions in range -----------------------------


@dataclasses.dataclass(slots=True)
class Engagement:
    """A group's decisions with outcomes: how many engaged, and the exact sums of their
    revenues and of their revenues squared (each decision's revenue rounded once)."""

    engaged: int = 0
    revenue: ExactSum = dataclasses.field(default_factory=ExactSum)
    revenue_sq: ExactSum = dataclasses.field(default_factory=ExactSum)

    def add_decision(self, engaged: bool, revenue: float, sign: int = 1) -> None:
        """Add one decision (``sign`` -1: take it away)."""
        self.engaged += sign * bool(engaged)
        if sign > 0:
            self.revenue.add_float(revenue)
            self.revenue_sq.add_float(revenue * revenue)
        else:
            self.revenue.sub_float(revenue)
            self.revenue_sq.sub_float(revenue * revenue)

    def merge(self, other: Engagement) -> None:
        self.engaged += other.engaged
        self.revenue.add(other.revenue)
        self.revenue_sq.add(other.revenue_sq)


_NO_ENGAGEMENT = Engagement()


def outcome_rows(
    session: Session,
    keys,
    decisions,
    config_id,
    since,
    settings: Settings,
    *,
    until: dt.datetime | None = None,
) -> tuple[list, list]:
    """The direct outcomes and the attributed credit of the decisions matching
    ``decisions`` (SQL conditions on them, a range of days or hours), a row each, with
    the decision's group columns (:func:`decision_records` merges them).

    :param since: only outcomes received and credit given from then on can belong to
        the decisions in range (:func:`written_since`); None reads them all
    :param until: leave out the rows written from then on (None: none left out)
    """
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        # Before PostgreSQL has statistics on a new or fast-growing table (autovacuum not
        # yet run, or off) it estimates one row everywhere and nests a scan of the day's
        # decisions inside a loop over its outcomes: quadratic (0.96 s for 3,000
        # decisions and 542 outcomes). Hash joins cost little more with statistics and
        # never blow up; the setting is lifted again right after these two queries.
        session.execute(text("SET LOCAL enable_nestloop = off"))
    # Direct outcomes and attributed credit are two queries, merged per decision (a
    # decision can have both). Each starts from this config's rows written since the
    # range began (an index range scan), not from every outcome or credit row it ever had.
    rows = _outcome_rows(connection, keys, decisions, config_id, since, until, settings)
    if postgres:
        session.execute(text("SET LOCAL enable_nestloop TO DEFAULT"))
    return rows


def recent_rows(
    session: Session, keys, config_id, since: dt.datetime, settings: Settings
) -> tuple[list, list]:
    """The rows of :func:`outcome_rows` written since ``since``, whatever their decision's
    day: for a read's last hours. No range on decisions: each row finds its decision by
    primary key (a nested loop over a few hundred rows), where the range form's hash
    joins would read every decision of the day and every outcome."""
    return _outcome_rows(
        session.connection(),
        keys,
        [Decision.config_id == config_id],
        config_id,
        since,
        None,
        settings,
    )


def outcome_rows_of(
    session: Session, keys, config_id, decision_ids: Sequence, settings: Settings
) -> tuple[list, list]:
    """The rows of :func:`outcome_rows` of these decisions (all of them), looked up by
    decision id: for the few decisions a read corrects. No range on decisions either:
    the way in is the outcomes' and attributions' decision index, then primary keys."""
    direct: list = []
    attributed: list = []
    connection = session.connection()
    positive = rewards.positive_types(settings.reward) or ["__none__"]
    value_events = list(settings.reward.value_events) or ["__none__"]
    mine = [Decision.config_id == config_id]
    if connection.dialect.name == "postgresql":
        # All the ids as one uuid[] parameter (decision_id = ANY(:ids)): two short
        # statements, where IN lists of a thousand parameters cost more to render and
        # for the driver to parse than the server takes to run them (a read through
        # today corrects a couple of thousand decisions at 100,000 decisions a day).
        if not decision_ids:
            return direct, attributed
        ids = {"decision_ids": list(decision_ids)}
        received = [Outcome.config_id == config_id, Outcome.decision_id == any_(_DECISION_IDS)]
        credited = [
            Attribution.config_id == config_id,
            Attribution.decision_id == any_(_DECISION_IDS),
        ]
        # By index and primary key only: with the whole array the planner expects a row
        # per id and would hash every outcome of the configuration to join a few hundred
        # credit rows (0.16 s against a few ms); lifted again right after.
        session.execute(text("SET LOCAL enable_hashjoin = off"))
        session.execute(text("SET LOCAL enable_mergejoin = off"))
        direct = _direct_outcomes(connection, keys, mine, received, positive, value_events, ids)
        attributed = _attributed_credit(
            connection, keys, mine, credited, positive, value_events, ids
        )
        session.execute(text("SET LOCAL enable_hashjoin TO DEFAULT"))
        session.execute(text("SET LOCAL enable_mergejoin TO DEFAULT"))
        return direct, attributed
    for start in range(0, len(decision_ids), _IDS_PER_QUERY):
        chunk = list(decision_ids[start : start + _IDS_PER_QUERY])
        received = [Outcome.config_id == config_id, Outcome.decision_id.in_(chunk)]
        credited = [Attribution.config_id == config_id, Attribution.decision_id.in_(chunk)]
        direct += _direct_outcomes(connection, keys, mine, received, positive, value_events)
        attributed += _attributed_credit(connection, keys, mine, credited, positive, value_events)
    return direct, attributed


# PostgreSQL: ``decision_id = ANY(:decision_ids)``, the ids as one uuid[] parameter.
_DECISION_IDS = bindparam("decision_ids", type_=postgresql.ARRAY(Uuid))


def _outcome_rows(connection, keys, decisions, config_id, since, until, settings) -> tuple:
    positive = rewards.positive_types(settings.reward) or ["__none__"]
    value_events = list(settings.reward.value_events) or ["__none__"]
    received = [Outcome.config_id == config_id]
    credited = [Attribution.config_id == config_id]
    if since is not None:
        received.append(Outcome.received_at >= since)
        credited.append(Attribution.created_at >= since)
    if until is not None:
        received.append(Outcome.received_at < until)
        credited.append(Attribution.created_at < until)
    return (
        _direct_outcomes(connection, keys, decisions, received, positive, value_events),
        _attributed_credit(connection, keys, decisions, credited, positive, value_events),
    )


def _direct_outcomes(connection, keys, decisions, received, positive, value_events, params=None):
    """Per outcome tied to a decision: engaged, revenue, type (imports that came with a
    reward are counted by it, not by their outcomes)."""
    revenue = case((Outcome.type.in_(value_events), func.coalesce(Outcome.value, 0.0)), else_=0.0)
    return connection.execute(
        select(
            Decision.id,
            *keys,
            case((Outcome.type.in_(positive), 1), else_=0).label("engaged"),
            revenue.label("revenue"),
            Outcome.type,
            literal(1).label("n"),
            literal(0).label("given_positive"),
            Outcome.received_at.label("written_at"),
        )
        .select_from(Outcome)
        .join(Decision, Decision.id == Outcome.decision_id)
        .where(*received, *decisions, Decision.given_reward.is_(None)),
        params or {},
    ).all()


def _attributed_credit(connection, keys, decisions, credited, positive, value_events, params=None):
    """Per credit row: engaged, revenue (credit × value), type and the credit itself."""
    engaged = and_(Outcome.type.in_(positive), Attribution.credit > 0)
    revenue = case(
        (
            Outcome.type.in_(value_events),
            Attribution.credit * func.coalesce(Outcome.value, 0.0),
        ),
        else_=0.0,
    )
    return connection.execute(
        select(
            Decision.id,
            *keys,
            case((engaged, 1), else_=0).label("engaged"),
            revenue.label("revenue"),
            Outcome.type,
            Attribution.credit.label("n"),
            case((Decision.given_reward > 0, 1), else_=0).label("given_positive"),
            Attribution.created_at.label("written_at"),
        )
        .select_from(Attribution)
        .join(Decision, Decision.id == Attribution.decision_id)
        .join(Outcome, Outcome.id == Attribution.outcome_id)
        .where(*credited, *decisions),
        params or {},
    ).all()


def decision_records(direct, attributed, day_of: Callable[[object], object]) -> dict:
    """``{decision id: DecisionRecord}`` from the rows of :func:`outcome_rows`, each key's
    ``day`` read with ``day_of``."""
    records: dict = {}
    for rows, from_attribution in ((direct, False), (attributed, True)):
        key_of = _group_key_reader(rows)
        for row in rows:
            record = records.get(row.id)
            if record is None:
                key = key_of(row)
                record = records[row.id] = DecisionRecord(GroupKey(day_of(key[0]), *key[1:]))
            record.add(row, from_attribution=from_attribution)
    return records


def as_date(value) -> dt.date:
    """A ``day`` column's value (a date, or ISO text on SQLite) as a date."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


# --- Documents from the counts --------------------------------------------------------------


class Engagements:
    """The decisions' records added up per group (:class:`Engagement`), and the live
    decisions' outcomes per day, variant and type (exact sums)."""

    def __init__(self) -> None:
        self.per_group: dict[GroupKey, Engagement] = {}
        self.outcome_types: dict[tuple, ExactSum] = {}

    def group(self, key: GroupKey) -> Engagement:
        found = self.per_group.get(key)
        if found is None:
            found = self.per_group[key] = Engagement()
        return found

    def outcome_type(self, key: tuple) -> ExactSum:
        found = self.outcome_types.get(key)
        if found is None:
            found = self.outcome_types[key] = ExactSum()
        return found

    def add(self, record: DecisionRecord, *, sign: int = 1) -> None:
        """Add one decision's record (``sign`` -1: take it away)."""
        key = record.key
        self.group(key).add_decision(record.engaged, record.revenue, sign)
        if key.source == _LIVE:
            for type_, parts in record.types.items():
                total = self.outcome_type((key.day, key.variant, type_))
                for part in parts:
                    if sign > 0:
                        total.add_float(part)
                    else:
                        total.sub_float(part)


def build_documents(
    counts: Mapping[GroupKey, Decided],
    records: Iterable[DecisionRecord] | Engagements,
    cost_of: Callable[[str, str], float],
    digest: str,
) -> dict[dt.date, dict]:
    """One document per day from the decision-side counts by group (keyed by date) and
    the decisions' records (keyed alike), or their :class:`Engagements`. A record whose
    group has no counts (a decision changed between the two queries) adds nothing to
    engagement, as a group never seen."""
    engagements = records
    if not isinstance(engagements, Engagements):
        engagements = Engagements()
        for record in records:
            engagements.add(record)
    per_group = engagements.per_group
    groups = [
        _group(key, found, per_group.get(key, _NO_ENGAGEMENT), cost_of)
        for key, found in counts.items()
    ]
    days = _documents(groups, digest)
    whole = {}
    for key, total in engagements.outcome_types.items():
        n = total.value()
        whole[key] = int(n) if n.is_integer() else n
    _count_outcome_types(days, whole)
    return days


def _group(key: GroupKey, found: Decided, engagement: Engagement, cost_of) -> _Group:
    """One group of decisions and its counts ``C``."""
    counts = {
        "decisions": found.decisions,
        "engagements": engagement.engaged + found.engaged_by_reward,
        # Exact sums rounded once (as fsum would): whatever the rows' order, or the hours
        # they were added up by, a recomputed day is identical.
        "reward": found.reward.value(),
        "revenue": engagement.revenue.value(),
        "revenue_sq": engagement.revenue_sq.value(),
        "cost": cost_of(key.action_id, key.channel) * found.decisions,
        "baseline_decisions": found.baseline,
        "model_agreements": found.agreements,
    }
    return _Group(key.day, key, counts)


# --- Folding groups into documents --------------------------------------------------------


def _documents(groups: list[_Group], digest: str) -> dict[dt.date, dict]:
    """Fold grouped rows into one document per day."""
    groups.sort(key=_group_order)
    kept = _kept_segments(groups)
    days: dict[dt.date, dict] = {}
    for date, key, counts in groups:
        document = days.get(date)
        if document is None:
            document = days[date] = _empty_document(digest)
        add_counts(document["sources"].setdefault(key.source, empty_counts()), counts)
        if key.source != _LIVE:
            continue
        add_counts(document["variants"][key.variant], counts)
        add_counts(split_of(document["channels"], key.channel)[key.variant], counts)
        add_counts(split_of(document["actions"], key.action_id)[key.variant], counts)
        value = _segment_value(key.segment)
        value = value if value in kept[date] else OTHER_SEGMENTS
        by_channel = document["segments"].setdefault(value, {})
        add_counts(split_of(by_channel, key.channel)[key.variant], counts)
    for document in days.values():
        _round_floats(document)
    return dict(sorted(days.items()))


def _group_order(group: _Group) -> tuple:
    # A fixed order of addition, so a recomputed day sums its floats the same way.
    key = group.key
    parts = (key.variant, key.channel, key.action_id, key.source, key.segment)
    return group.date, tuple(str(part) for part in parts)


def _kept_segments(groups: list[_Group]) -> dict[dt.date, set[str]]:
    """Per day, the :data:`MAX_SEGMENTS` segment values with the most live decisions."""
    totals: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for date, key, counts in groups:
        if key.source == _LIVE:
            totals[date][_segment_value(key.segment)] += counts["decisions"]
    return {
        date: {
            value
            for value, _n in sorted(by_value.items(), key=lambda i: (-i[1], i[0]))[:MAX_SEGMENTS]
        }
        for date, by_value in totals.items()
    }


def _empty_document(digest: str) -> dict:
    return {
        "variants": {variant: empty_counts() for variant in VARIANTS},
        "channels": {},
        "actions": {},
        "segments": {},
        "sources": {},
        "outcomes": {},
        "inputs_digest": digest,
    }


def _count_outcome_types(days: dict[dt.date, dict], outcome_types: Mapping[tuple, float]) -> None:
    """Add the live decisions' outcomes per type and variant to their days' documents."""
    for (date, variant, type_), count in sorted(outcome_types.items()):
        document = days.get(date)
        if document is not None:  # outcomes of live decisions: their day has a document
            split = document["outcomes"].setdefault(type_, dict.fromkeys(VARIANTS, 0))
            split[variant] = round(split[variant] + count, 9)


def _segment_value(raw) -> str:
    return NO_SEGMENT if raw is None else str(raw)[:128]


def _round_floats(node: dict) -> None:
    # Sums of floats in SQL may differ in the last bits from run to run (aggregation
    # order); rounding far below a cent keeps a recomputed day identical.
    for key, value in node.items():
        if isinstance(value, dict):
            _round_floats(value)
        elif isinstance(value, float):
            node[key] = round(value, 9)
