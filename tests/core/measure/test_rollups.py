"""Daily rollups on real databases: the day document, refresh, stale marks, exact reads."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.learn import imports, learning, outcomes
from hpe_core.measure import rollups
from hpe_core.measure.day_documents import CLOCK_SKEW, MAX_SEGMENTS, OTHER_SEGMENTS, inputs_digest
from hpe_core.store.models import Attribution, Decision, MetricsDay, Outcome, StaleMetricsDay
from hpe_core.tenancy import configs, workspaces
from hpe_core.tenancy.workspaces import Principal
from web.extensions import app_runtime

NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
DAY = dt.timedelta(days=1)
CHANNEL_COSTS = {"email": 0.01, "web": 0.002}
SETTINGS = {
    "actions": [{"id": "a", "cost": 0.5}, {"id": "b", "cost": 0.25}],
    "holdout": {"percent": 50},
    "reward": {
        "events": {"open": 0.1, "click": 1.0, "conversion": 1.0, "unsubscribe": 0.0},
        "value_events": ["conversion"],
    },
    "goals": {"segment_key": "tier"},
}


@pytest.fixture
def config(app, session):
    workspaces.create_workspace(session, "rollers")
    created = configs.create(
        session,
        Principal("rollers", "test"),
        app_runtime(app).catalog,
        name="Rollups",
        settings=SETTINGS,
    )
    session.commit()
    return created


def _decision(session, config, at, **fields) -> uuid.UUID:
    variant = fields.pop("variant", "treatment")
    row = Decision(
        id=uuid.uuid4(),
        workspace_id=config.workspace_id,
        config_id=config.id,
        user_id=fields.pop("user_id", f"u-{uuid.uuid4().hex[:6]}"),
        channel=fields.pop("channel", "email"),
        context=fields.pop("context", {}),
        eligible=["a", "b"],
        probabilities=[0.5, 0.5],
        action_id=fields.pop("action_id", "a"),
        probability=0.5,
        variant=variant,
        policy=fields.pop("policy", "baseline" if variant == "holdout" else "model"),
        model_version=0,
        model_action_id=fields.pop("model_action_id", None),
        source=fields.pop("source", "live"),
        created_at=at,
        window_closes_at=at + dt.timedelta(hours=1),
        **fields,
    )
    session.add(row)
    session.flush()
    return row.id


def _outcome(
    session, config, decision_id, type_, value=None, user_id="u", received_at=NOW
) -> uuid.UUID:
    row = Outcome(
        id=uuid.uuid4(),
        workspace_id=config.workspace_id,
        config_id=config.id,
        decision_id=decision_id,
        user_id=user_id,
        type=type_,
        value=value,
        occurred_at=NOW,
        received_at=received_at,
        idempotency_key=uuid.uuid4().hex,
    )
    session.add(row)
    session.flush()
    return row.id


def _credit(session, config, outcome_id, decision_id, credit, created_at=None) -> None:
    session.add(
        Attribution(
            workspace_id=config.workspace_id,
            config_id=config.id,
            outcome_id=outcome_id,
            decision_id=decision_id,
            model="linear",
            credit=credit,
            created_at=created_at or NOW,
        )
    )
    session.flush()


def _noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)


def test_day_document_counts_every_counter_by_hand(session, config):
    """Direct outcomes, attributed credit, imports, costs and segments, checked by hand."""
    at = _noon(TODAY - 3 * DAY)
    t1 = _decision(session, config, at, context={"tier": "gold"}, model_action_id="b")
    t2 = _decision(session, config, at, context={"tier": "gold"}, reward=1.5)
    _decision(session, config, at, channel="web", action_id="b")  # t3: no tier
    h1 = _decision(session, config, at, variant="holdout", model_action_id="a")
    h2 = _decision(session, config, at, variant="holdout", context={"tier": "gold"})
    imported = _decision(session, config, at, variant="holdout", source="import", given_reward=2.0)
    # t1: a click and two purchases (40 + 10): engaged once, revenue 50.
    _outcome(session, config, t1, "click")
    _outcome(session, config, t1, "conversion", 40.0)
    _outcome(session, config, t1, "conversion", 10.0)
    # t2: only an unsubscribe (weight 0): not engaged.
    _outcome(session, config, t2, "unsubscribe")
    # A user-level purchase of 30, credited 0.75 to t2 and 0.25 to h1.
    purchase = _outcome(session, config, None, "conversion", 30.0)
    _credit(session, config, purchase, t2, 0.75)
    _credit(session, config, purchase, h1, 0.25)
    # A user-level open credited 0 to h2: credit 0 does not engage.
    opened = _outcome(session, config, None, "open")
    _credit(session, config, opened, h2, 0.0)
    # The import is engaged by its reward; attributed credit must not count it twice.
    _credit(session, config, opened, imported, 1.0)
    session.commit()

    days = rollups.compute_days(
        session, config, TODAY - 7 * DAY, TODAY, channel_costs=CHANNEL_COSTS
    )
    assert list(days) == [TODAY - 3 * DAY]
    document = days[TODAY - 3 * DAY]
    treatment, holdout = document["variants"]["treatment"], document["variants"]["holdout"]
    assert treatment == pytest.approx(
        {
            "decisions": 3,
            "engagements": 2,  # t1 by its click, t2 by attributed conversion credit
            "reward": 1.5,
            "revenue": 50.0 + 22.5,
            "revenue_sq": 50.0**2 + 22.5**2,
            "cost": (0.5 + 0.01) * 2 + (0.25 + 0.002),
            "baseline_decisions": 0,
            "model_agreements": 0,
        }
    )
    assert holdout == pytest.approx(
        {
            "decisions": 2,
            "engagements": 1,  # h1 by 0.25 of the purchase; h2's zero credit does not count
            "reward": 0.0,
            "revenue": 7.5,
            "revenue_sq": 7.5**2,
            "cost": (0.5 + 0.01) * 2,
            "baseline_decisions": 2,
            "model_agreements": 1,  # h1: the model would also have chosen a
        }
    )
    assert document["channels"]["web"]["treatment"]["decisions"] == 1
    assert document["channels"]["web"]["holdout"]["decisions"] == 0
    assert document["channels"]["email"]["holdout"]["revenue"] == 7.5
    assert document["actions"]["b"]["treatment"]["cost"] == pytest.approx(0.252)
    assert document["actions"]["a"]["treatment"]["engagements"] == 2
    gold = document["segments"]["gold"]["email"]
    assert (gold["treatment"]["decisions"], gold["holdout"]["decisions"]) == (2, 1)
    assert document["segments"]["(none)"]["web"]["treatment"]["decisions"] == 1
    assert document["segments"]["(none)"]["email"]["holdout"]["engagements"] == 1
    # Imports: only under sources, engaged once (reward 2.0), its credit not doubled.
    assert document["sources"]["import"]["decisions"] == 1
    assert document["sources"]["import"]["engagements"] == 1
    assert document["sources"]["live"]["decisions"] == 5
    assert document["sources"]["live"]["engagements"] == 3
    assert document["inputs_digest"] == inputs_digest(config, CHANNEL_COSTS)


def test_a_live_day_reads_outcomes_and_credit_written_since_it_began(session, config):
    """Today live: outcomes and credit written since midnight (or up to CLOCK_SKEW before,
    another host's clock) count for today's decisions; today's outcomes of older
    decisions count on their own day; a wider range gives the same document."""
    midnight = dt.datetime.combine(TODAY, dt.time(), tzinfo=dt.UTC)
    skewed = midnight - CLOCK_SKEW / 2  # yesterday evening by the recording host's clock
    early = _decision(session, config, midnight + dt.timedelta(minutes=10), user_id="ann")
    later = _decision(session, config, _noon(TODAY), user_id="bob")
    old = _decision(session, config, _noon(TODAY - 3 * DAY), user_id="cyd")
    _outcome(session, config, early, "click", received_at=skewed)
    purchase = _outcome(session, config, None, "conversion", 30.0, "ann", received_at=skewed)
    _credit(session, config, purchase, early, 1.0, created_at=skewed)
    _outcome(session, config, later, "conversion", 40.0)  # received NOW, today
    _outcome(session, config, old, "conversion", 5.0)  # received today, decided 3 days ago
    session.commit()

    today = rollups.compute_days(session, config, TODAY, TODAY)[TODAY]
    assert today["variants"]["treatment"] == pytest.approx(
        {
            "decisions": 2,
            "engagements": 2,
            "reward": 0.0,
            "revenue": 70.0,
            "revenue_sq": 30.0**2 + 40.0**2,
            "cost": 1.0,
            "baseline_decisions": 0,
            "model_agreements": 0,
        }
    )
    wider = rollups.compute_days(session, config, TODAY - 7 * DAY, TODAY)
    assert wider[TODAY] == today
    assert wider[TODAY - 3 * DAY]["variants"]["treatment"]["revenue"] == 5.0


def test_imports_refuse_the_future_and_count_a_skewed_timestamp_on_its_day(session, config):
    """An import line may be stamped at most CLOCK_SKEW after the import (the exporter's
    clock); its outcomes, received at import time, the day before, still count."""
    late_evening = dt.datetime.combine(TODAY, dt.time(23, 30), tzinfo=dt.UTC)
    tomorrow = TODAY + DAY
    stamps = [late_evening + CLOCK_SKEW - dt.timedelta(minutes=5), late_evening + 2 * CLOCK_SKEW]
    lines = [
        f'{{"user_id": "x{n}", "channel": "email", "timestamp": "{at.isoformat()}",'
        f' "action_id": "a", "probability": 0.5, "outcomes": [{{"type": "click"}}]}}'
        for n, at in enumerate(stamps)
    ]
    principal = Principal("rollers", "test")
    result = imports.import_lines(session, principal, config.id, lines, late_evening)
    session.commit()
    assert result["accepted"] == 1
    assert result["rejected"] == [{"line": 2, "error": "timestamp is in the future"}]
    document = rollups.compute_days(session, config, tomorrow, tomorrow)[tomorrow]
    assert document["sources"]["import"]["decisions"] == 1
    assert document["sources"]["import"]["engagements"] == 1


def test_segments_beyond_the_fifty_largest_are_summed_as_other(session, config):
    """A high-cardinality segment key keeps the 50 largest values; the rest is (other)."""
    at = _noon(TODAY - 2 * DAY)
    for n in range(MAX_SEGMENTS + 5):
        copies = 2 if n < MAX_SEGMENTS else 1  # the last five are the smallest
        for _ in range(copies):
            _decision(session, config, at, context={"tier": f"t{n:02d}"})
    session.commit()
    document = rollups.compute_days(session, config, at.date(), at.date())[at.date()]
    segments = document["segments"]
    assert len(segments) == MAX_SEGMENTS + 1
    assert segments[OTHER_SEGMENTS]["email"]["treatment"]["decisions"] == 5
    assert "t54" not in segments and segments["t00"]["email"]["treatment"]["decisions"] == 2


def test_refresh_stores_recent_days_and_recomputing_gives_the_same_row(session, config):
    """Today and yesterday are stored; a second refresh writes identical documents."""
    for day in (TODAY, TODAY - DAY, TODAY - 5 * DAY):
        decision = _decision(session, config, _noon(day))
        _outcome(session, config, decision, "conversion", 12.5)
    _decision(session, config, _noon(TODAY - DAY), variant="holdout")
    session.commit()
    refreshed = rollups.refresh(session, config, channel_costs=CHANNEL_COSTS, now=NOW)
    session.commit()
    assert refreshed == [TODAY - DAY, TODAY]
    first = {row.date: row.metrics for row in session.scalars(sa.select(MetricsDay))}
    assert set(first) == {TODAY - DAY, TODAY}  # 5 days ago was never marked: not stored
    live = rollups.compute_days(session, config, TODAY - DAY, TODAY, channel_costs=CHANNEL_COSTS)
    assert first == live
    later = NOW + dt.timedelta(minutes=5)
    rollups.refresh(session, config, channel_costs=CHANNEL_COSTS, now=later)
    session.commit()
    session.expire_all()
    rows = session.scalars(sa.select(MetricsDay)).all()
    assert {row.date: row.metrics for row in rows} == first
    assert all(row.updated_at == later for row in rows)
    assert len(rows) == 2  # upserted, not duplicated


def test_marked_days_are_recomputed_and_their_marks_cleared(session, config):
    """A stale mark brings an old day into the refresh; the mark is consumed."""
    old = TODAY - 9 * DAY
    _decision(session, config, _noon(old))
    session.commit()
    rollups.mark_stale(session, config.id, [old, old])
    session.commit()
    assert rollups.refresh(session, config, channel_costs={}, now=NOW) == [
        old,
        TODAY - DAY,
        TODAY,
    ]
    session.commit()
    stored = session.scalars(sa.select(MetricsDay)).one()
    assert stored.date == old and stored.metrics["variants"]["treatment"]["decisions"] == 1
    assert session.scalars(sa.select(StaleMetricsDay)).all() == []


def test_a_day_left_without_decisions_loses_its_row(session, config):
    """Recomputing a day with no decisions deletes its stored document."""
    old = TODAY - 4 * DAY
    decision = _decision(session, config, _noon(old))
    session.commit()
    rollups.mark_stale(session, config.id, [old])
    rollups.refresh(session, config, channel_costs={}, now=NOW)
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(MetricsDay)) == 1
    session.execute(sa.delete(Decision).where(Decision.id == decision))
    rollups.mark_stale(session, config.id, [old])
    rollups.refresh(session, config, channel_costs={}, now=NOW)
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(MetricsDay)) == 0


def test_a_mark_set_after_the_refresh_read_it_survives(session, config):
    """Clearing deletes only marks not re-marked since they were read (no lost update)."""
    old = TODAY - 6 * DAY
    rollups.mark_stale(session, config.id, [old])
    session.commit()
    seen = session.scalar(sa.select(StaleMetricsDay.marked_at))
    rollups.mark_stale(session, config.id, [old])  # concurrent change, after the read
    session.commit()
    remarked = session.scalar(sa.select(StaleMetricsDay.marked_at))
    assert remarked > seen
    rollups._clear_marks(session, config.id, {old: seen})
    session.commit()
    assert session.scalar(sa.select(StaleMetricsDay.marked_at)) == remarked
    rollups._clear_marks(session, config.id, {old: remarked})
    session.commit()
    assert session.scalar(sa.select(StaleMetricsDay.marked_at)) is None


def test_days_stored_with_other_settings_are_recomputed(session, app, config):
    """Changing what the document depends on (a cost) makes stored days stale."""
    old = TODAY - 3 * DAY
    _decision(session, config, _noon(old))
    rollups.mark_stale(session, config.id, [old])
    rollups.refresh(session, config, channel_costs={}, now=NOW)
    session.commit()
    assert rollups.refresh(session, config, channel_costs={}, now=NOW) == [TODAY - DAY, TODAY]
    # The email channel now costs something: the stored day's digest no longer matches.
    assert rollups.refresh(session, config, channel_costs={"email": 0.1}, now=NOW) == [
        old,
        TODAY - DAY,
        TODAY,
    ]
    session.commit()
    row = session.scalars(sa.select(MetricsDay).where(MetricsDay.date == old)).one()
    assert row.metrics["variants"]["treatment"]["cost"] == pytest.approx(0.6)


def test_refresh_catches_up_at_most_max_days_newest_first(session, config):
    """A big backlog of stale days is recomputed over several passes, newest first."""
    old_days = [TODAY - n * DAY for n in range(3, 8)]
    for day in old_days:
        _decision(session, config, _noon(day))
    rollups.mark_stale(session, config.id, old_days)
    session.commit()
    first = rollups.refresh(session, config, channel_costs={}, now=NOW, max_days=2)
    assert first == [TODAY - 4 * DAY, TODAY - 3 * DAY, TODAY - DAY, TODAY]
    session.commit()
    left = set(session.scalars(sa.select(StaleMetricsDay.date)))
    assert left == {TODAY - 5 * DAY, TODAY - 6 * DAY, TODAY - 7 * DAY}


def _tamper(session) -> None:
    """Flag the stored documents (keeping digest and updated_at), so a test can tell a
    stored day from a live one."""
    for row in session.execute(sa.select(MetricsDay.id, MetricsDay.metrics, MetricsDay.updated_at)):
        session.execute(
            sa.update(MetricsDay)
            .where(MetricsDay.id == row.id)
            .values(metrics={**row.metrics, "tampered": True}, updated_at=row.updated_at)
        )
    session.commit()


def test_read_uses_clean_stored_rows_and_computes_the_rest_live(session, config):
    """Stored rows are used only when complete and clean; every other day is live."""
    days = [TODAY - 3 * DAY, TODAY - 2 * DAY, TODAY - DAY, TODAY]
    for day in days:
        _decision(session, config, _noon(day))
    rollups.mark_stale(session, config.id, days)
    rollups.refresh(session, config, channel_costs={}, now=NOW)
    session.commit()
    _tamper(session)
    rollups.mark_stale(session, config.id, [TODAY - 2 * DAY])
    session.commit()
    read = rollups.read(session, config, TODAY - 3 * DAY, TODAY, channel_costs={})
    assert [day.date for day in read] == days
    sources = {day.date: "tampered" in day.metrics for day in read}
    # 3 and 1 days ago: clean stored rows. 2 days ago: marked stale. Today: not over.
    assert sources == {
        TODAY - 3 * DAY: True,
        TODAY - 2 * DAY: False,
        TODAY - DAY: True,
        TODAY: False,
    }
    assert [day.rolled_up_at is not None for day in read] == [True, False, True, False]
    # Other channel costs than stored: every day is computed live.
    read = rollups.read(session, config, TODAY - 3 * DAY, TODAY, channel_costs={"web": 1})
    assert not any("tampered" in day.metrics for day in read)


def test_a_row_rolled_up_before_its_day_ended_is_not_used(session, config):
    """A day rolled up while it was still running is read live until rolled up again."""
    yesterday = TODAY - DAY
    _decision(session, config, _noon(yesterday))
    rollups.refresh(session, config, channel_costs={}, now=_noon(yesterday))
    session.commit()
    _tamper(session)
    read = rollups.read(session, config, yesterday, yesterday, channel_costs={})
    assert read[0].rolled_up_at is None and "tampered" not in read[0].metrics


def test_outcomes_for_old_decisions_mark_their_day_stale(session, config):
    """An outcome on a decision older than yesterday marks its day, whatever its weight
    (the day counts outcomes by type); one on a recent decision marks nothing."""
    principal = Principal("rollers", "test")
    old = _decision(session, config, _noon(TODAY - 4 * DAY))
    recent = _decision(session, config, _noon(TODAY - DAY))
    session.commit()
    event = outcomes.OutcomeEvent(type="click", decision_id=recent)
    outcomes.record(session, principal, config.id, [event], now=NOW)
    session.commit()
    assert session.scalars(sa.select(StaleMetricsDay.date)).all() == []
    event = outcomes.OutcomeEvent(type="unsubscribe", decision_id=old)  # weight 0
    outcomes.record(session, principal, config.id, [event], now=NOW)
    session.commit()
    assert session.scalars(sa.select(StaleMetricsDay.date)).all() == [TODAY - 4 * DAY]


def test_imports_mark_the_days_of_their_decisions(session, config):
    """Imported history marks each day it lands on."""
    lines = [
        f'{{"user_id": "x{n}", "channel": "email", "timestamp": "{day.isoformat()}T08:00:00Z",'
        f' "action_id": "a", "probability": 0.5, "reward": 1}}'
        for n, day in enumerate([TODAY - 30 * DAY, TODAY - 30 * DAY, TODAY - 2 * DAY])
    ]
    result = imports.import_lines(session, Principal("rollers", "test"), config.id, lines, NOW)
    session.commit()
    assert result["accepted"] == 3
    marked = sorted(session.scalars(sa.select(StaleMetricsDay.date)))
    assert marked == [TODAY - 30 * DAY, TODAY - 2 * DAY]


def test_learning_marks_the_days_of_old_decisions_it_rewarded(session, config):
    """Learning sets rewards: days older than yesterday are marked, recent ones are not."""
    _decision(session, config, _noon(TODAY - 5 * DAY))
    _decision(session, config, NOW - dt.timedelta(hours=2))
    session.commit()
    report = learning.learn_all_closed(session, config.id, now=NOW)
    assert report.learned == 2
    assert session.scalars(sa.select(StaleMetricsDay.date)).all() == [TODAY - 5 * DAY]
