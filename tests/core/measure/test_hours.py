"""Hourly partials of yesterday and today: a read that adds up stored hours answers
exactly what computing the whole day live answers, whatever arrives after an hour was
stored (late outcomes, credit, rewards, imports), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from hpe_core.learn import attribution, imports, learning
from hpe_core.measure import hours, rollups
from hpe_core.store import stale_days
from hpe_core.store.models import (
    Decision,
    MetricsHour,
    MetricsHoursSum,
    Outcome,
    StaleMetricsHour,
)
from hpe_core.tenancy import configs, workspaces
from hpe_core.tenancy.workspaces import Principal
from tests.core.measure.test_rollups import (
    CHANNEL_COSTS,
    DAY,
    NOW,
    SETTINGS,
    TODAY,
    _credit,
    _decision,
    _outcome,
)
from web.extensions import app_runtime


@pytest.fixture
def config(app, session):
    workspaces.create_workspace(session, "rollers")
    created = configs.create(
        session,
        Principal("rollers", "test"),
        app_runtime(app).catalog,
        name="Hours",
        settings=SETTINGS,
    )
    session.commit()
    return created


YESTERDAY = TODAY - DAY
MIDNIGHT = dt.datetime.combine(TODAY, dt.time(), tzinfo=dt.UTC)


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


def _traffic(session, config) -> dict:
    """Decisions through yesterday and today (NOW is 15:00): both variants, two channels,
    segments, an import, outcomes, a value event twice on one decision, credit."""
    made = {}
    for day in (YESTERDAY, TODAY):
        for hour in (0, 3, 9, 13, 14):
            for n, (variant, channel, tier) in enumerate(
                [
                    ("treatment", "email", "gold"),
                    ("treatment", "web", "silver"),
                    ("holdout", "email", "gold"),
                    ("treatment", "email", None),
                ]
            ):
                context = {"tier": tier} if tier else {}
                made[(day, hour, n)] = _decision(
                    session,
                    config,
                    _at(day, hour, 10 + n),
                    variant=variant,
                    channel=channel,
                    context=context,
                    action_id="a" if n % 2 else "b",
                    user_id=f"u{hour}-{n}",
                    model_action_id="a",
                )
        _outcome(session, config, made[(day, 3, 0)], "click", received_at=_at(day, 3, 30))
        _outcome(session, config, made[(day, 3, 0)], "conversion", 40.0, received_at=_at(day, 4))
        _outcome(session, config, made[(day, 9, 2)], "open", received_at=_at(day, 9, 20))
        purchase = _outcome(session, config, None, "conversion", 30.0, received_at=_at(day, 10))
        _credit(session, config, purchase, made[(day, 9, 1)], 0.75, created_at=_at(day, 10, 5))
        _credit(session, config, purchase, made[(day, 3, 2)], 0.25, created_at=_at(day, 10, 5))
    _decision(session, config, _at(TODAY, 2), source="import", given_reward=1.0)
    session.commit()
    return made


def _refresh(session, config, now=NOW) -> None:
    rollups.refresh(session, config, channel_costs=CHANNEL_COSTS, now=now)
    session.commit()


def _read(session, config) -> dict:
    """Yesterday and today as a read answers them (stored hours plus the rest live)."""
    documents, whole = hours.read(session, config, [YESTERDAY, TODAY], channel_costs=CHANNEL_COSTS)
    assert whole == []  # both days have stored hours
    return documents


def _live(session, config) -> dict:
    """Both days computed whole from the decision log."""
    return rollups.compute_days(session, config, YESTERDAY, TODAY, channel_costs=CHANNEL_COSTS)


def _usable_hours(session, config) -> set:
    """The stored hours a read would use now."""
    return set(hours.stored_hours(session, config, [YESTERDAY, TODAY], channel_costs=CHANNEL_COSTS))


def test_refresh_stores_the_settled_hours_of_yesterday_and_today(session, config):
    """At 15:00 the hours up to 14:00 are settled: yesterday's 24 and today's 14 are
    stored, empty ones too, and each day's sum with every hour's cut; the open hour and
    the one before it are not."""
    _traffic(session, config)
    _refresh(session, config)
    stored = {row.hour: row for row in session.scalars(sa.select(MetricsHour))}
    assert min(stored) == _at(YESTERDAY, 0) and max(stored) == _at(TODAY, 13)
    assert len(stored) == 24 + 14
    assert stored[_at(TODAY, 5)].counts["groups"] == []
    three = stored[_at(TODAY, 3)].counts
    assert sum(group[5] for group in three["groups"]) == 4  # decisions
    assert sum(group[10] for group in three["groups"]) == 2  # engaged: a click, a credit
    assert all(row.computed_at == NOW for row in stored.values())
    sums = {row.date: row.counts for row in session.scalars(sa.select(MetricsHoursSum))}
    assert set(sums) == {YESTERDAY, TODAY}
    assert len(sums[YESTERDAY]["cuts"]) == 24 and len(sums[TODAY]["cuts"]) == 14
    cut = (NOW - hours.SETTLE).isoformat()
    assert set(sums[TODAY]["cuts"].values()) == {cut}
    # Today: four decisions at 0, 3, 9 and 13 h and the import at 2 h; 14 h is not settled.
    assert sum(group[5] for group in sums[TODAY]["groups"]) == 4 * 4 + 1


def test_a_read_from_stored_hours_equals_the_whole_day_computed_live(session, config):
    """The documents of yesterday and today added up from stored hours (plus 14:00 and
    15:00 live) are exactly the documents computed whole, and the read really used the
    stored hours."""
    _traffic(session, config)
    _refresh(session, config)
    assert _read(session, config) == _live(session, config)
    assert len(_usable_hours(session, config)) == 38
    # Tamper with today's stored sum: the read shows it, so it came from storage.
    row = session.get(MetricsHoursSum, (config.id, TODAY))
    counts = {**row.counts, "groups": [[*g[:5], g[5] + 100, *g[6:]] for g in row.counts["groups"]]}
    session.execute(
        sa.update(MetricsHoursSum)
        .where(MetricsHoursSum.config_id == config.id, MetricsHoursSum.date == TODAY)
        .values(counts=counts)
    )
    session.commit()
    read = _read(session, config)
    live = _live(session, config)
    live_groups = sum(group[3] == "live" for group in counts["groups"])
    assert read[TODAY]["sources"]["live"]["decisions"] == (
        live[TODAY]["sources"]["live"]["decisions"] + 100 * live_groups
    )
    assert read[YESTERDAY] == live[YESTERDAY]


def test_late_outcomes_for_a_stored_hour_count_at_once(session, config):
    """Outcomes and credit written after an hour was stored: a first click, a second
    value event on a decision that had one (its revenue squared changes), an outcome of a
    type the reward ignores, and new credit: all in the next read."""
    made = _traffic(session, config)
    # Written before the pass, after its cut: the read adds it, the stored hour does not.
    _outcome(
        session, config, made[(TODAY, 13, 0)], "click", received_at=NOW - dt.timedelta(minutes=30)
    )
    session.commit()
    _refresh(session, config)
    thirteen = session.get(MetricsHour, (config.id, _at(TODAY, 13))).counts
    assert sum(group[10] for group in thirteen["groups"]) == 0
    later = NOW + dt.timedelta(minutes=3)
    _outcome(session, config, made[(TODAY, 0, 1)], "click", received_at=later)
    _outcome(session, config, made[(TODAY, 3, 0)], "conversion", 60.0, received_at=later)
    _outcome(session, config, made[(TODAY, 9, 3)], "unsubscribe", received_at=later)
    _outcome(session, config, made[(YESTERDAY, 13, 2)], "click", received_at=later)
    purchase = _outcome(session, config, None, "conversion", 8.0, received_at=later)
    _credit(session, config, purchase, made[(TODAY, 13, 3)], 1.0, created_at=later)
    session.commit()
    read, live = _read(session, config), _live(session, config)
    assert read == live
    assert live[TODAY]["variants"]["treatment"]["revenue_sq"] == pytest.approx(
        100.0**2 + 22.5**2 + 8.0**2
    )
    assert live[TODAY]["outcomes"]["unsubscribe"]["treatment"] == 1
    assert len(_usable_hours(session, config)) == 38  # no hour had to be computed live


def test_an_outcome_stamped_before_the_hour_was_stored_counts(session, config):
    """An outcome written after the pass but stamped up to SETTLE earlier (another host's
    clock, a slow commit) is still read: yesterday alone (no live hour to read from) and
    through today."""
    made = _traffic(session, config)
    _refresh(session, config)
    skewed = NOW - hours.SETTLE + dt.timedelta(minutes=1)
    _outcome(session, config, made[(YESTERDAY, 3, 1)], "conversion", 5.0, received_at=skewed)
    _outcome(session, config, made[(TODAY, 0, 0)], "conversion", 7.0, received_at=skewed)
    session.commit()
    alone, _whole = hours.read(session, config, [YESTERDAY], channel_costs=CHANNEL_COSTS)
    live = _live(session, config)
    assert alone == {YESTERDAY: live[YESTERDAY]}
    assert live[YESTERDAY]["variants"]["treatment"]["revenue"] == pytest.approx(40.0 + 22.5 + 5.0)
    assert _read(session, config) == live


def test_learning_marks_the_hours_it_rewards_and_the_next_pass_stores_them(session, config):
    """Rewards set on decisions of stored hours mark those hours: they are read live (the
    rewards count at once) until the next pass stores them again and clears the marks."""
    _traffic(session, config)
    _refresh(session, config)
    report = learning.learn_all_closed(session, config.id, now=NOW)
    session.commit()
    assert report.learned > 0
    marked = set(session.scalars(sa.select(StaleMetricsHour.hour)))
    assert _at(TODAY, 3) in marked and _at(YESTERDAY, 9) in marked
    live = _live(session, config)
    assert live[TODAY]["variants"]["treatment"]["reward"] > 0
    assert _read(session, config) == live
    assert not marked & _usable_hours(session, config)
    _refresh(session, config, NOW + dt.timedelta(minutes=5))
    assert session.scalars(sa.select(StaleMetricsHour)).all() == []
    assert _read(session, config) == live
    assert len(_usable_hours(session, config)) == 38


def test_marks_set_while_a_pass_runs_survive_it(session, config):
    """A mark newer than what the pass read stays (the pass may have missed its change)."""
    _traffic(session, config)
    stale_days.mark_stale_hours(session, config.id, [_at(TODAY, 3)])
    session.commit()
    seen = session.scalar(sa.select(StaleMetricsHour.marked_at))
    stale_days.mark_stale_hours(session, config.id, [_at(TODAY, 3)])
    session.commit()
    hours._clear_marks(session, config.id, {_at(TODAY, 3): seen})
    session.commit()
    assert session.scalar(sa.select(StaleMetricsHour.hour)) == _at(TODAY, 3)


def test_a_personalizer_reward_on_a_stored_hour_marks_it(session, config):
    """A given reward changes the decision's engagement: its hour is marked."""
    made = _traffic(session, config)
    _refresh(session, config)
    session.execute(
        sa.update(Decision).where(Decision.id == made[(TODAY, 9, 0)]).values(given_reward=1.0)
    )
    stale_days.mark_stale_decisions(session, config.id, [made[(TODAY, 9, 0)]], now=NOW)
    session.commit()
    assert set(session.scalars(sa.select(StaleMetricsHour.hour))) == {_at(TODAY, 9)}
    assert _read(session, config) == _live(session, config)


def test_attribution_moving_credit_away_from_a_stored_hour(session, config):
    """A rerun of attribution takes credit from a decision of a stored hour and gives it
    to a later one: the read follows at once."""
    made = _traffic(session, config)
    _decision(session, config, _at(TODAY, 1), user_id="pat")
    purchase = _outcome(session, config, None, "conversion", 12.0, "pat", received_at=_at(TODAY, 2))
    session.execute(
        sa.update(Outcome).where(Outcome.id == purchase).values(occurred_at=_at(TODAY, 12))
    )
    session.commit()
    attribution.attribute_pending(session, config.id, {}, now=_at(TODAY, 2))
    _refresh(session, config)
    before = _read(session, config)
    assert before == _live(session, config)
    # pat decides again at 12:30 (after the purchase's time, so it is not a touch yet);
    # move the purchase after it and rerun: last touch now credits the 12:30 decision.
    _decision(session, config, _at(TODAY, 12, 30), user_id="pat")
    session.execute(
        sa.update(Outcome).where(Outcome.id == purchase).values(occurred_at=_at(TODAY, 12, 45))
    )
    attribution.reattribute(session, config.id, since=_at(TODAY, 0))
    session.commit()
    attribution.attribute_pending(session, config.id, {}, now=NOW + dt.timedelta(minutes=2))
    assert _at(TODAY, 1) in set(session.scalars(sa.select(StaleMetricsHour.hour)))
    read = _read(session, config)
    assert read == _live(session, config)
    assert made  # the rest of the traffic is unchanged


def test_an_import_into_today_is_read_at_once(session, config):
    """Imported decisions land in stored hours: the import marks the day, whose hours are
    then read live until the next pass."""
    _traffic(session, config)
    _refresh(session, config)
    line = (
        '{"user_id": "imp", "channel": "email", "timestamp": "'
        + _at(TODAY, 4, 15).isoformat()
        + '", "action_id": "a", "probability": 0.5, "reward": 1}'
    )
    imports.import_lines(session, Principal("rollers", "test"), config.id, [line], NOW)
    session.commit()
    assert _read(session, config) == _live(session, config)
    _refresh(session, config, NOW + dt.timedelta(minutes=5))
    assert _read(session, config) == _live(session, config)
    assert len(_usable_hours(session, config)) == 38


def test_other_settings_make_stored_hours_unusable(session, config):
    """Hours stored with other channel costs are not used (the days are computed whole);
    the next pass redoes them."""
    _traffic(session, config)
    _refresh(session, config)
    costs = {"email": 0.5}
    read, whole = hours.read(session, config, [YESTERDAY, TODAY], channel_costs=costs)
    assert read == {} and whole == [YESTERDAY, TODAY]
    days = rollups.read(session, config, YESTERDAY, TODAY, channel_costs=costs)
    live = rollups.compute_days(session, config, YESTERDAY, TODAY, channel_costs=costs)
    assert {day.date: dict(day.metrics) for day in days} == live


def test_old_hours_are_dropped_and_stale_hours_recomputed(session, config):
    """A pass the next day drops the hours before its yesterday; a stored hour older than
    RECOMPUTE_AFTER is recomputed, a fresh one is not."""
    _traffic(session, config)
    _refresh(session, config)
    soon = NOW + dt.timedelta(minutes=10)
    redone = hours.refresh(session, config, channel_costs=CHANNEL_COSTS, now=soon)
    assert redone == []  # nothing due: all fresh, no new settled hour
    later = NOW + hours.RECOMPUTE_AFTER + dt.timedelta(minutes=1)
    redone = hours.refresh(session, config, channel_costs=CHANNEL_COSTS, now=later)
    assert len(redone) == 39  # the 38 stored, and 14:00 settled since
    tomorrow = NOW + DAY
    hours.refresh(session, config, channel_costs=CHANNEL_COSTS, now=tomorrow)
    session.commit()
    assert min(session.scalars(sa.select(MetricsHour.hour))) == _at(TODAY, 0)


def test_the_metrics_read_through_today_uses_stored_hours(session, config):
    """rollups.read: yesterday stored whole (the pass ran after it ended), today from its
    stored hours and the rest live."""
    _traffic(session, config)
    _refresh(session, config)
    read = rollups.read(session, config, YESTERDAY, TODAY, channel_costs=CHANNEL_COSTS)
    live = _live(session, config)
    assert {day.date: dict(day.metrics) for day in read} == live
    # Yesterday was stored whole by the pass (after it ended); today is not over.
    assert [day.rolled_up_at for day in read] == [NOW, None]
