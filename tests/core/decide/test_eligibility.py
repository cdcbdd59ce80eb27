"""hpe_core.decide.eligibility: action rules, channels, candidates, quiet hours, campaign window."""

from __future__ import annotations

import datetime as dt

import pytest

from hpe_core.decide import eligibility
from hpe_core.tenancy.settings_types import Action, ActionRule, Campaign, QuietHours, Schedule

CONTEXT = {
    "country": "DE",
    "age": 34,
    "tier": "gold",
    "profile": {"score": 0.7, "tags": ["a", "b"], "opt_in": False},
    "nothing": None,
}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"key": "country", "in": ["DE", "AT"]}, True),
        ({"key": "country", "in": ["FR"]}, False),
        ({"key": "country", "not_in": ["FR", "IT"]}, True),
        ({"key": "country", "not_in": ["DE"]}, False),
        ({"key": "age", "gte": 18}, True),
        ({"key": "age", "gte": 35}, False),
        ({"key": "age", "lte": 34}, True),
        ({"key": "age", "lte": 33}, False),
        ({"key": "age", "gte": 30, "lte": 40}, True),
        ({"key": "age", "gte": 35, "lte": 40}, False),
        ({"key": "profile.score", "gte": 0.5}, True),
        ({"key": "tier", "gte": "bronze", "lte": "silver"}, True),  # strings compare too
        ({"key": "profile.opt_in", "in": [False]}, True),
        ({"key": "profile.opt_in", "exists": True}, True),
        ({"key": "tier", "exists": True}, True),
        ({"key": "tier", "exists": False}, False),
    ],
)
def test_rule_operators(rule, expected):
    """in / not_in / gte / lte / exists, on top-level and dotted nested keys."""
    assert eligibility.rule_matches(ActionRule.of(rule), CONTEXT) is expected


@pytest.mark.parametrize(
    "rule",
    [
        {"key": "missing", "in": ["x"]},
        {"key": "missing", "not_in": ["x"]},
        {"key": "missing", "gte": 1},
        {"key": "profile.missing.deeper", "lte": 1},
        {"key": "country.sub", "in": ["DE"]},  # a path through a string
        {"key": "nothing", "not_in": ["x"]},  # null counts as missing
        {"key": "missing", "exists": True},
    ],
)
def test_rules_on_missing_keys_fail(rule):
    """A missing (or null) key fails every operator except exists: false."""
    assert eligibility.rule_matches(ActionRule.of(rule), CONTEXT) is False


def test_exists_false_holds_for_missing_keys():
    """exists: false is the one rule a missing key satisfies."""
    assert eligibility.rule_matches(ActionRule(key="missing", exists=False), CONTEXT)
    assert eligibility.rule_matches(ActionRule(key="nothing", exists=False), CONTEXT)


@pytest.mark.parametrize(
    "rule",
    [
        {"key": "country", "gte": 10},  # str vs int
        {"key": "age", "lte": "40"},  # int vs str
        {"key": "profile.tags", "gte": 1},  # list vs int
        {"key": "profile", "lte": 3},  # object vs int
    ],
)
def test_type_mismatches_fail_instead_of_raising(rule):
    """Comparing mismatched types makes the rule fail; it never raises."""
    assert eligibility.rule_matches(ActionRule.of(rule), CONTEXT) is False


def test_unhashable_values_with_in_do_not_raise():
    """An object or list value tested with in/not_in is simply not a member."""
    assert eligibility.rule_matches(ActionRule(key="profile", in_=("x",)), CONTEXT) is False
    assert eligibility.rule_matches(ActionRule(key="profile.tags", not_in=("x",)), CONTEXT) is True


ACTIONS = {
    action.id: action
    for action in map(
        Action.of,
        [
            {"id": "mail", "channels": ["email"]},
            {"id": "adult", "rules": [{"key": "age", "gte": 18}]},
            {"id": "any"},
            {"id": "web-fr", "channels": ["web"], "rules": [{"key": "country", "in": ["FR"]}]},
        ],
    )
}


def test_eligible_actions_apply_channels_rules_and_candidates():
    """Channel, rules and candidates all filter; order follows settings or candidates."""
    assert eligibility.eligible_actions(ACTIONS, "email", CONTEXT, None) == ["mail", "adult", "any"]
    assert eligibility.eligible_actions(ACTIONS, "web", CONTEXT, None) == ["adult", "any"]
    assert eligibility.eligible_actions(ACTIONS, "web", {"country": "FR"}, None) == [
        "any",
        "web-fr",
    ]
    assert eligibility.eligible_actions(ACTIONS, "email", CONTEXT, ["any", "mail"]) == [
        "any",
        "mail",
    ]
    assert eligibility.eligible_actions(ACTIONS, "email", CONTEXT, ["web-fr"]) == []


def test_an_empty_channel_list_offers_the_action_everywhere():
    """``channels: []`` is accepted by the schema and means no restriction, like no list."""
    actions = {"open": Action.of({"id": "open", "channels": []})}
    assert eligibility.eligible_actions(actions, "web", CONTEXT, None) == ["open"]


def test_duplicate_candidates_count_once():
    """A candidate listed twice is eligible once, at its first position."""
    candidates = ["any", "mail", "any", "mail"]
    assert eligibility.eligible_actions(ACTIONS, "email", CONTEXT, candidates) == ["any", "mail"]


QUIET = Schedule(QuietHours(start="21:00", end="08:00", timezone_context_key="tz"))
DAYTIME = Schedule(QuietHours(start="12:00", end="14:00", timezone_context_key="where.tz"))


def _utc(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 6, 15, hour, minute, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("now", "zone", "quiet"),
    [
        (_utc(20, 59), "UTC", False),
        (_utc(21, 0), "UTC", True),
        (_utc(23, 30), "UTC", True),
        (_utc(0, 0), "UTC", True),
        (_utc(7, 59), "UTC", True),
        (_utc(8, 0), "UTC", False),
        (_utc(12, 0), "UTC", False),
        # Berlin is UTC+2 in June: 19:30 UTC is 21:30 there, 06:30 UTC is 08:30.
        (_utc(19, 30), "Europe/Berlin", True),
        (_utc(6, 30), "Europe/Berlin", False),
        # New York is UTC-4 in June: 02:00 UTC is 22:00 the previous evening.
        (_utc(2, 0), "America/New_York", True),
        (_utc(13, 0), "America/New_York", False),
    ],
)
def test_quiet_hours_wrap_midnight_in_the_users_zone(now, zone, quiet):
    """21:00-08:00 wraps midnight and is read in the context's time zone."""
    assert eligibility.in_quiet_hours(QUIET, {"tz": zone}, now) is quiet


def test_quiet_hours_within_one_day_and_a_nested_zone_key():
    """12:00-14:00 does not wrap; the zone may come from a dotted context key."""
    context = {"where": {"tz": "UTC"}}
    assert eligibility.in_quiet_hours(DAYTIME, context, _utc(13, 0))
    assert not eligibility.in_quiet_hours(DAYTIME, context, _utc(14, 0))
    assert not eligibility.in_quiet_hours(DAYTIME, context, _utc(11, 59))


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"tz": None},
        {"tz": 5},
        {"tz": "Mars/Olympus"},
        {"tz": ""},
        {"tz": "America"},  # a folder of the zone database
        {"tz": "Europe/"},
        {"tz": "../../etc/passwd"},
        {"tz": "x" * 300},  # longer than a file name may be
    ],
)
def test_quiet_hours_need_a_valid_zone(context):
    """Without a usable time zone in the context, quiet hours do not apply."""
    assert not eligibility.in_quiet_hours(QUIET, context, _utc(23))
    assert not eligibility.in_quiet_hours(Schedule(quiet_hours=None), {"tz": "UTC"}, _utc(23))


def test_campaign_window_bounds_decisions():
    """Before starts_at or from ends_at on, the campaign is not running."""
    campaign = Campaign(
        external_id=None,
        source=None,
        starts_at=dt.datetime.fromisoformat("2026-06-01T00:00:00+00:00"),
        ends_at=dt.datetime.fromisoformat("2026-07-01T00:00:00+02:00"),
    )
    assert not eligibility.campaign_running(campaign, _utc(0).replace(month=5))
    assert eligibility.campaign_running(campaign, _utc(12))
    assert eligibility.campaign_running(campaign, dt.datetime(2026, 6, 30, 21, 59, tzinfo=dt.UTC))
    assert not eligibility.campaign_running(campaign, dt.datetime(2026, 6, 30, 22, tzinfo=dt.UTC))
    assert eligibility.campaign_running(Campaign(None, None, None, None), _utc(12))
