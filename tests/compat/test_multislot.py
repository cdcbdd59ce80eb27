"""Multi-slot Rank, Reward and Activate through Microsoft's client: one logged decision per
slot, a different action in each (docs/personalizer.md)."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from hpe_core.compat.options import slot_decision_id
from hpe_core.decide.assignment import variant
from tests.compat.conftest import assert_personalizer_error, rank_request


def multislot_request(**extra) -> dict:
    body = rank_request()
    body["actions"].append({"id": "soup", "features": [{"cuisine": "any"}]})
    return {
        **body,
        "slots": [
            {"id": "main", "baselineAction": "pasta", "features": [{"size": "large"}]},
            {"id": "side", "baselineAction": "salad", "excludedActions": ["sushi"]},
            {"id": "starter", "baselineAction": "soup"},
        ],
        **extra,
    }


def test_each_slot_is_a_logged_decision_with_its_own_action(loop):
    answer = loop.personalizer().rank_multi_slot(multislot_request(eventId="page-1"))
    assert answer["eventId"] == "page-1"
    chosen = {slot["id"]: slot["rewardActionId"] for slot in answer["slots"]}
    assert list(chosen) == ["main", "side", "starter"]
    assert len(set(chosen.values())) == 3  # never the same action twice
    assert chosen["side"] != "sushi"  # its excluded action
    rows = {row.context["_slot"]["id"]: row for row in loop.decisions()}
    config_id = uuid.UUID(loop.config_id)
    for slot, action in chosen.items():
        row = rows[slot]
        assert row.id == slot_decision_id(config_id, "page-1", slot)
        assert row.action_id == action and row.user_id == "page-1"
        assert row.probability > 0
    assert rows["main"].context["_slot"] == {"id": "main", "size": "large"}
    assert rows["main"].context["user"] == {"tier": "gold"}
    # One event, one draw: every slot is in the same arm of the experiment.
    assert len({row.variant for row in rows.values()}) == 1


def test_a_slot_left_without_candidates_gets_no_action(loop):
    """A slot whose actions are excluded or taken by the slots before it: null, and no
    decision logged for it. (Held out with a fixed baseline, the first slot surely takes
    sushi, the second slot's only candidate.)"""
    loop.patch(
        {
            "actions": [{"id": "pasta"}, {"id": "sushi"}],
            "holdout": {"percent": 50, "baseline": {"action_id": "sushi"}},
        }
    )
    config_id = uuid.UUID(loop.config_id)
    event = next(
        f"held-{n}" for n in range(1000) if variant(config_id, f"held-{n}", 50) == "holdout"
    )
    body = {
        "eventId": event,
        "actions": [{"id": "pasta", "features": []}, {"id": "sushi", "features": []}],
        "slots": [
            {"id": "first", "baselineAction": "pasta"},
            {"id": "second", "baselineAction": "sushi", "excludedActions": ["pasta"]},
        ],
    }
    answer = loop.personalizer().rank_multi_slot(body)
    assert answer["slots"] == [
        {"id": "first", "rewardActionId": "sushi"},
        {"id": "second", "rewardActionId": None},
    ]
    assert [row.context["_slot"]["id"] for row in loop.decisions()] == ["first"]


def test_the_same_event_id_answers_the_same_slots(loop):
    client = loop.personalizer()
    first = client.rank_multi_slot(multislot_request(eventId="again"))
    assert client.rank_multi_slot(multislot_request(eventId="again")) == first
    assert len(loop.decisions()) == 3


def test_slot_rewards_go_to_their_slots(loop):
    client = loop.personalizer()
    event = client.rank_multi_slot(multislot_request())["eventId"]
    client.reward_multi_slot(event, {"reward": [{"slotId": "main", "value": 1.0}]})
    client.reward_multi_slot(
        event, {"reward": [{"slotId": "side", "value": 0.5}, {"slotId": "main", "value": 0.1}]}
    )
    rewards = {row.context["_slot"]["id"]: row.given_reward for row in loop.decisions()}
    assert rewards == {"main": 1.0, "side": 0.5, "starter": None}  # earliest per slot
    with pytest.raises(ResourceNotFoundError) as raised:
        client.reward_multi_slot(event, {"reward": [{"slotId": "footer", "value": 1.0}]})
    assert_personalizer_error(raised.value, 404, "ResourceNotFound")
    with pytest.raises(ResourceNotFoundError):
        client.reward_multi_slot("no-such-event", {"reward": [{"slotId": "main", "value": 1}]})
    with pytest.raises(HttpResponseError) as raised:
        client.reward_multi_slot(event, {"reward": []})
    assert_personalizer_error(raised.value, 400, "InvalidRewardRequest")


def test_activating_a_multislot_event_activates_its_slots_only(loop):
    """A single-slot event with the same id is another event: it stays deferred."""
    client = loop.personalizer()
    client.rank_multi_slot(multislot_request(eventId="shared", deferActivation=True))
    client.rank(rank_request(eventId="shared", deferActivation=True))
    assert {row.source for row in loop.decisions()} == {"deferred"}
    client.activate_multi_slot("shared")
    sources = {
        row.context.get("_slot", {}).get("id", "single"): row.source for row in loop.decisions()
    }
    assert sources == {"main": "live", "side": "live", "starter": "live", "single": "deferred"}
    with pytest.raises(ResourceNotFoundError):
        client.activate_multi_slot("no-such-event")


@pytest.mark.parametrize(
    ("slots", "message"),
    [
        ([], "at least one slot"),
        ([{"id": "a", "baselineAction": "ghost"}], "not one of the actions"),
        ([{"id": "a", "baselineAction": "pasta", "excludedActions": ["pasta"]}], "excluded"),
        (
            [{"id": "a", "baselineAction": "pasta"}, {"id": "a", "baselineAction": "sushi"}],
            "Duplicate slot id",
        ),
        ([{"id": "a"}], "baselineAction is required"),
        ([{"baselineAction": "pasta"}], "id is required"),
    ],
)
def test_bad_slots_are_400s(loop, slots, message):
    with pytest.raises(HttpResponseError) as raised:
        loop.personalizer().rank_multi_slot(multislot_request(slots=slots))
    assert_personalizer_error(raised.value, 400, "InvalidRankRequest")
    assert message in raised.value.error.message
    assert loop.decisions() == []
