"""Rank through Microsoft's client: HPE's real decision, logged, with dynamic actions and
the event-id rule (docs/personalizer.md)."""

from __future__ import annotations

import threading
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError

from hpe_core.compat.options import event_decision_id
from hpe_core.store.vocabulary import DecisionSource, Policy, Variant
from tests.compat.conftest import assert_personalizer_error, rank_request
from tests.conftest import BASE


def test_rank_answers_hpe_logged_decision(loop):
    """The answer's rewardActionId and probabilities are the logged decision's, with its
    propensity, variant and the event id as its user."""
    answer = loop.personalizer().rank(rank_request(eventId="event-1"))
    assert answer["eventId"] == "event-1"
    [row] = loop.decisions()
    assert row.id == event_decision_id(uuid.UUID(loop.config_id), "event-1")
    assert answer["rewardActionId"] == row.action_id
    assert row.user_id == "event-1" and row.channel == "web"
    assert row.variant in (Variant.TREATMENT, Variant.HOLDOUT)
    assert row.policy == (Policy.MODEL if row.variant == Variant.TREATMENT else Policy.BASELINE)
    assert row.source == DecisionSource.LIVE
    shown = {item["id"]: item["probability"] for item in answer["ranking"]}
    assert shown == dict(zip(row.eligible, row.probabilities, strict=True))
    assert row.probability == pytest.approx(shown[row.action_id])
    assert sum(shown.values()) == pytest.approx(1.0)
    # The chosen action comes first, then the others by probability.
    assert answer["ranking"][0]["id"] == answer["rewardActionId"]
    rest = [item["probability"] for item in answer["ranking"][1:]]
    assert rest == sorted(rest, reverse=True)
    # The merged contextFeatures are the decision's context.
    assert row.context == {"user": {"tier": "gold"}, "device": "mobile"}


@pytest.mark.parametrize("given", [{}, {"eventId": None}, {"eventId": ""}])
def test_rank_generates_an_event_id_when_none_is_given(loop, given):
    """No eventId (absent, null or empty): HPE makes one (32 hex digits) and logs the
    decision under it."""
    answer = loop.personalizer().rank(rank_request(**given))
    assert len(answer["eventId"]) == 32 and int(answer["eventId"], 16) >= 0
    [row] = loop.decisions()
    assert row.user_id == answer["eventId"]


def test_unknown_actions_join_the_catalog_with_their_features(loop):
    """Dynamic actions: ids the configuration lacks are added with the Rank's features,
    flattened; an id HPE cannot use as it is keeps its original in content."""
    body = rank_request()
    body["actions"].append({"id": "Cafe Latte", "features": [{"drink": True}]})
    answer = loop.personalizer().rank(body)
    actions = {a["id"]: a for a in loop.settings()["actions"]}
    assert actions["pasta"]["features"] == {"cuisine": "italian"}  # known: catalog wins
    assert actions["sushi"]["features"] == {"cuisine": "japanese", "price.eur": 12.5}
    assert actions["salad"]["features"] == {"cuisine": "any", "tags": ["light", "green"]}
    [latte] = [a for a in actions.values() if a["content"].get("personalizer_id") == "Cafe Latte"]
    assert latte["id"].startswith("pz-") and latte["features"] == {"drink": True}
    # Answers always show the caller's ids.
    assert {item["id"] for item in answer["ranking"]} == {"pasta", "sushi", "salad", "Cafe Latte"}
    # The addition is an ordinary, logged settings change.
    response = loop.client.get(
        f"{BASE}/{loop.config_id}/activities?type=config.updated", headers=loop.tenant.headers
    )
    assert response.get_json()


def test_excluded_actions_are_ranked_last_with_probability_zero(loop):
    answer = loop.personalizer().rank(rank_request(excludedActions=["sushi", "salad"]))
    assert answer["rewardActionId"] == "pasta"
    assert answer["ranking"] == [
        {"id": "pasta", "probability": 1.0},
        {"id": "sushi", "probability": 0.0},
        {"id": "salad", "probability": 0.0},
    ]
    [row] = loop.decisions()
    assert row.eligible == ["pasta"]


def test_the_same_event_id_twice_answers_the_first_decision(loop):
    """Idempotent: a repeated eventId logs nothing new and answers the same."""
    client = loop.personalizer()
    first = client.rank(rank_request(eventId="again"))
    second = client.rank(rank_request(eventId="again"))
    assert second == first
    assert len(loop.decisions()) == 1


def test_a_repeated_event_id_with_other_context_is_refused(loop):
    client = loop.personalizer()
    client.rank(rank_request(eventId="e"))
    with pytest.raises(ResourceExistsError) as raised:
        client.rank(rank_request(eventId="e", contextFeatures=[{"device": "desktop"}]))
    assert_personalizer_error(raised.value, 409, "InvalidRankRequest")
    assert len(loop.decisions()) == 1


def test_concurrent_ranks_with_one_event_id_make_one_decision(loop):
    """Racing calls: one decision logged, every call answered with it."""
    answers, failures = [], []

    def call():
        try:
            answers.append(loop.personalizer().rank(rank_request(eventId="race")))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert len(loop.decisions()) == 1
    assert len({a["rewardActionId"] for a in answers}) == 1


def test_a_configuration_can_forbid_dynamic_actions(loop):
    """personalizer.dynamic_actions false: unknown ids are a 400, the catalog unchanged."""
    loop.patch({"personalizer": {"dynamic_actions": False}})
    with pytest.raises(HttpResponseError) as raised:
        loop.personalizer().rank(rank_request())
    assert_personalizer_error(raised.value, 400, "InvalidRankRequest")
    assert "dynamic_actions" in raised.value.error.message
    assert [a["id"] for a in loop.settings()["actions"]] == ["pasta"]
    # Known ids only: ranked as usual.
    body = rank_request()
    body["actions"] = body["actions"][:1]
    assert loop.personalizer().rank(body)["rewardActionId"] == "pasta"


def test_a_publishable_key_is_refused(loop, make_tenant):
    """Personalizer's keys were secret: a publishable key (public, in web pages) could
    forge rewards, so every route refuses it, and nothing is logged."""
    public = make_tenant(loop.tenant.id, kind="publishable")
    loop.personalizer().rank(rank_request(eventId="known"))
    client = loop.personalizer(public.key)
    for call in (
        lambda: client.rank(rank_request()),
        lambda: client.reward("known", {"value": 1.0}),
        lambda: client.activate("known"),
        lambda: loop.admin(public.key).get_policy(),
    ):
        with pytest.raises(HttpResponseError) as raised:
            call()
        assert_personalizer_error(raised.value, 403, "InvalidApiAccess")
    [row] = loop.decisions()
    assert row.given_reward is None


def test_nothing_eligible_answers_no_action_and_logs_nothing(loop):
    """A guardrail or schedule stops the decision: rewardActionId null, every action 0."""
    loop.patch({"campaign": {"ends_at": "2020-01-01T00:00:00Z"}})
    answer = loop.personalizer().rank(rank_request(eventId="late"))
    assert answer["rewardActionId"] is None
    assert {item["probability"] for item in answer["ranking"]} == {0.0}
    assert loop.decisions() == []


def test_a_paused_configuration_refuses_to_rank(loop):
    response = loop.client.patch(
        f"{BASE}/{loop.config_id}", json={"status": "PAUSED"}, headers=loop.tenant.headers
    )
    assert response.status_code == 200
    with pytest.raises(ResourceExistsError) as raised:
        loop.personalizer().rank(rank_request())
    assert_personalizer_error(raised.value, 409, "OperationNotAllowed")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"actions": []}, "at least one action"),
        ({"excludedActions": ["pasta", "sushi", "salad"]}, "Every action is excluded"),
        ({"excludedActions": ["ghost"]}, "not among the actions"),
        ({"contextFeatures": {"not": "a list"}}, "contextFeatures"),
        ({"eventId": "x" * 257}, "eventId"),
        ({"deferActivation": "yes"}, "deferActivation"),
    ],
)
def test_bad_rank_requests_are_400s_with_personalizer_codes(loop, change, message):
    with pytest.raises(HttpResponseError) as raised:
        loop.personalizer().rank(rank_request(**change))
    assert_personalizer_error(raised.value, 400, "InvalidRankRequest")
    assert message in raised.value.error.message
    assert loop.decisions() == []


def test_duplicate_action_ids_and_unstorable_features_are_400s(loop):
    body = rank_request()
    body["actions"].append({"id": "pasta", "features": []})
    with pytest.raises(HttpResponseError) as raised:
        loop.personalizer().rank(body)
    assert_personalizer_error(raised.value, 400, "InvalidRankRequest")
    body = rank_request()
    body["actions"].append({"id": "long", "features": [{"text": "x" * 300}]})
    with pytest.raises(HttpResponseError) as raised:
        loop.personalizer().rank(body)
    assert_personalizer_error(raised.value, 400, "InvalidRankRequest")
    assert "long" in raised.value.error.message
    assert [a["id"] for a in loop.settings()["actions"]] == ["pasta"]


def test_concurrent_ranks_adding_different_actions_keep_them_all(loop):
    """The configuration is read again and locked before actions are added: no Rank's
    additions overwrite another's."""
    failures = []

    def call(n):
        body = rank_request(eventId=f"add-{n}")
        body["actions"].append({"id": f"new-{n}", "features": [{"n": n}]})
        try:
            loop.personalizer().rank(body)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    ids = {a["id"] for a in loop.settings()["actions"]}
    assert {f"new-{n}" for n in range(4)} <= ids
    assert len(loop.decisions()) == 4
