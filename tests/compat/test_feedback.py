"""Reward and Activate through Microsoft's client: rewards combined as the loop says,
deferred events neither counted nor learned until activated (docs/personalizer.md)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.compat.conftest import assert_personalizer_error, rank_request


def _only(loop):
    [row] = loop.decisions()
    return row


def test_earliest_keeps_the_first_reward(loop):
    """rewardAggregation earliest (the default): later rewards change nothing."""
    client = loop.personalizer()
    event = client.rank(rank_request())["eventId"]
    client.reward(event, {"value": 0.25})
    client.reward(event, {"value": 1.0})
    assert _only(loop).given_reward == pytest.approx(0.25)


def test_sum_adds_every_reward(loop):
    loop.patch({"personalizer": {"reward_aggregation": "sum"}})
    client = loop.personalizer()
    event = client.rank(rank_request())["eventId"]
    for value in (0.25, 0.5, -0.25):
        client.reward(event, {"value": value})
    assert _only(loop).given_reward == pytest.approx(0.5)


def test_a_reward_is_learned_and_counted_as_engagement(loop):
    """The reward is the decision's reward when its window closes; above 0 it is an
    engagement in metrics, at once."""
    client = loop.personalizer()
    rewarded = client.rank(rank_request(eventId="rewarded"))
    client.rank(rank_request(eventId="silent"))
    client.reward("rewarded", {"value": 0.75})
    summary = loop.metrics()["summary"]
    assert sum(summary["decisions"].values()) == 2
    assert sum(summary["engagements"].values()) == 1
    assert loop.learn() == 2
    rows = {row.user_id: row for row in loop.decisions()}
    assert rows["rewarded"].reward == pytest.approx(0.75) and rows["rewarded"].engaged
    assert rows["silent"].reward == 0.0 and not rows["silent"].engaged  # reward.default
    assert rows["rewarded"].action_id == rewarded["rewardActionId"]


def test_a_reward_after_the_wait_time_is_ignored(loop):
    """As Personalizer ignores rewards after rewardWaitTime: accepted (204), not used."""
    admin = loop.admin()
    configuration = admin.get_service_configuration()
    admin.update_service_configuration({**configuration, "rewardWaitTime": "PT1S"})
    client = loop.personalizer()
    event = client.rank(rank_request())["eventId"]
    time.sleep(1.2)
    client.reward(event, {"value": 1.0})
    assert _only(loop).given_reward is None


def test_rewards_for_unknown_events_are_404s(loop):
    with pytest.raises(ResourceNotFoundError) as raised:
        loop.personalizer().reward("never-ranked", {"value": 1.0})
    assert_personalizer_error(raised.value, 404, "ResourceNotFound")
    with pytest.raises(ResourceNotFoundError) as raised:
        loop.personalizer().activate("never-ranked")
    assert_personalizer_error(raised.value, 404, "ResourceNotFound")


@pytest.mark.parametrize("body", [{}, {"value": "1"}, {"value": True}, {"value": None}])
def test_a_reward_without_a_number_is_a_400(loop, body):
    event = loop.personalizer().rank(rank_request())["eventId"]
    with pytest.raises(HttpResponseError) as raised:
        loop.personalizer().reward(event, body)
    assert_personalizer_error(raised.value, 400, "InvalidRewardRequest")


def test_a_deferred_event_is_not_counted_until_activated(loop):
    """deferActivation: the decision is logged as deferred, outside the experiment's
    counts and learning; a reward before activation is kept; Activate makes it live
    with a reward window from then on."""
    client = loop.personalizer()
    answer = client.rank(rank_request(eventId="later", deferActivation=True))
    row = _only(loop)
    assert row.source == "deferred" and row.action_id == answer["rewardActionId"]
    client.reward("later", {"value": 1.0})
    metrics = loop.metrics()
    assert sum(metrics["summary"]["decisions"].values()) == 0
    assert sum(metrics["summary"]["engagements"].values()) == 0
    [day] = metrics["daily"]
    assert day["metrics"]["sources"]["deferred"]["decisions"] == 1
    assert loop.learn(after=dt.timedelta(days=3650)) == 0

    before = dt.datetime.now(dt.UTC)
    client.activate("later")
    row = _only(loop)
    assert row.source == "live" and row.given_reward == 1.0
    waited = (row.window_closes_at - before).total_seconds()
    assert 86400 - 5 <= waited <= 86400 + 5  # the reward wait, from the activation
    summary = loop.metrics()["summary"]
    assert sum(summary["decisions"].values()) == 1
    assert sum(summary["engagements"].values()) == 1
    assert loop.learn() == 1
    assert _only(loop).reward == 1.0


def test_activating_twice_or_a_live_event_changes_nothing(loop):
    client = loop.personalizer()
    client.rank(rank_request(eventId="shown", deferActivation=True))
    client.activate("shown")
    closes = _only(loop).window_closes_at
    client.activate("shown")
    assert _only(loop).window_closes_at == closes
    client.rank(rank_request(eventId="live"))
    client.activate("live")
    assert {row.source for row in loop.decisions()} == {"live"}


def test_event_ids_with_slashes_and_spaces_round_trip(loop):
    """Event ids are path segments: the client escapes them, HPE reads them back whole."""
    client = loop.personalizer()
    client.rank(rank_request(eventId="order 12/line 3", deferActivation=True))
    client.activate("order 12/line 3")
    client.reward("order 12/line 3", {"value": 0.5})
    row = _only(loop)
    assert (row.user_id, row.source, row.given_reward) == ("order 12/line 3", "live", 0.5)
