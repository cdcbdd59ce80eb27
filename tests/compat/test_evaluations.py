"""Offline evaluations through Microsoft's administration client, answered from HPE's
off-policy evaluation (docs/personalizer.md)."""

from __future__ import annotations

import datetime as dt

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from hpe_core.compat.evaluations import EVALUATION_CREATED, EVALUATION_DELETED
from tests.compat.conftest import assert_personalizer_error, rank_request
from tests.conftest import BASE

NOW = dt.datetime.now(dt.UTC)
RANGE = {
    "startTime": (NOW - dt.timedelta(days=1)).isoformat(),
    "endTime": (NOW + dt.timedelta(days=1)).isoformat(),
}


@pytest.fixture
def history(loop):
    """Twenty learned events, rewarded when sushi was shown."""
    client = loop.personalizer()
    for n in range(20):
        answer = client.rank(rank_request(eventId=f"e{n}"))
        if answer["rewardActionId"] == "sushi":
            client.reward(answer["eventId"], {"value": 1.0})
    assert loop.learn() == 20
    return loop


def test_an_evaluation_is_hpes_off_policy_estimate(history):
    admin = history.admin()
    admin.create_evaluation("first", {"name": "First look", **RANGE})
    found = admin.get_evaluation("first", start_time=NOW, end_time=NOW)
    assert (found["id"], found["name"], found["status"]) == ("first", "First look", "Succeeded")
    assert found["evaluationType"] == "Manual"
    policies = {item["policySource"]: item for item in found["content"]["value"]}
    assert set(policies) == {"Online", "Random"}  # the holdout baseline is uniform
    online = policies["Online"]
    assert online["arguments"] == admin.get_policy()["arguments"]
    low, high = online["summary"]["confidenceInterval"]
    assert low <= online["summary"]["expectedReward"] <= high
    assert online["timeseries"]["data"][0]["expectedReward"] == online["summary"]["expectedReward"]
    # The same numbers as HPE's own evaluation endpoint (doubly robust).
    today = NOW.date()
    own = history.client.get(
        f"{BASE}/{history.config_id}/evaluation?from={today - dt.timedelta(days=1)}"
        f"&to={today + dt.timedelta(days=1)}",
        headers=history.tenant.headers,
    ).get_json()
    assert own["policies"]["model"]["n"] == 20
    assert online["summary"]["expectedReward"] == pytest.approx(own["policies"]["model"]["dr"])
    assert "20 logged decisions" in found["description"]


def test_evaluations_are_listed_paged_and_deleted(history):
    admin = history.admin()
    for name in ("a", "b", "c"):
        admin.create_evaluation(name, {"name": name.upper(), **RANGE})
    listed = list(admin.list_evaluations())
    assert [item["id"] for item in listed] == ["a", "b", "c"]
    assert "content" not in listed[0]
    assert [item["id"] for item in admin.list_evaluations(top=1, skip=1)] == ["b", "c"]
    admin.delete_evaluation("b")
    assert [item["id"] for item in admin.list_evaluations()] == ["a", "c"]
    with pytest.raises(ResourceNotFoundError) as raised:
        admin.get_evaluation("b", start_time=NOW, end_time=NOW)
    assert_personalizer_error(raised.value, 404, "EvaluationNotFound")
    with pytest.raises(ResourceNotFoundError):
        admin.delete_evaluation("b")
    # Kept in the activity log: created and deleted, nothing erased.
    types = [
        a["type"]
        for a in history.client.get(
            f"{BASE}/{history.config_id}/activities?type=personalizer.*",
            headers=history.tenant.headers,
        ).get_json()
    ]
    assert types.count(EVALUATION_CREATED) == 3 and types.count(EVALUATION_DELETED) == 1
    # A deleted id may be used again.
    admin.create_evaluation("b", {"name": "B again", **RANGE})


def test_an_existing_evaluation_id_is_a_conflict(history):
    admin = history.admin()
    admin.create_evaluation("x", {"name": "X", **RANGE})
    with pytest.raises(ResourceExistsError) as raised:
        admin.create_evaluation("x", {"name": "X", **RANGE})
    assert_personalizer_error(raised.value, 409, "InvalidEvaluationContract")


def test_a_range_without_decisions_says_where_they_are(history):
    admin = history.admin()
    with pytest.raises(HttpResponseError) as raised:
        admin.create_evaluation(
            "old",
            {"name": "Old", "startTime": "2020-01-01T00:00:00Z", "endTime": "2020-01-02T00:00:00Z"},
        )
    assert_personalizer_error(raised.value, 400, "NoLogsExistInDateRange")
    assert str(NOW.date()) in raised.value.error.message


def test_policy_optimization_is_accepted_and_said_not_done(history):
    admin = history.admin()
    admin.create_evaluation("opt", {"name": "Opt", "enablePolicyOptimization": True, **RANGE})
    found = admin.get_evaluation("opt", start_time=NOW, end_time=NOW)
    assert found["optimalPolicy"] is None
    assert "does not search" in found["description"]


def test_custom_policies_must_be_the_current_learning_settings(history):
    admin = history.admin()
    current = admin.get_policy()["arguments"]
    admin.create_evaluation(
        "same", {"name": "Same", "policies": [{"name": "mine", "arguments": current}], **RANGE}
    )
    found = admin.get_evaluation("same", start_time=NOW, end_time=NOW)
    assert "Custom" in {item["policySource"] for item in found["content"]["value"]}
    with pytest.raises(HttpResponseError) as raised:
        admin.create_evaluation(
            "other",
            {
                "name": "Other",
                "policies": [{"name": "eps", "arguments": "--cb_explore_adf --epsilon 0.3"}],
                **RANGE,
            },
        )
    assert_personalizer_error(raised.value, 400, "InvalidEvaluationContract")


def test_applying_an_evaluated_policy_sets_its_learning_settings(history):
    """applyFromEvaluation with the online policy keeps it; a baseline has none to apply."""
    admin = history.admin()
    admin.create_evaluation("e", {"name": "E", **RANGE})
    before = admin.get_policy()
    admin.apply_from_evaluation({"evaluationId": "e", "policyName": before["name"]})
    assert admin.get_policy() == before
    with pytest.raises(HttpResponseError) as raised:
        admin.apply_from_evaluation({"evaluationId": "e", "policyName": "Random"})
    assert_personalizer_error(raised.value, 400, "InvalidPolicyConfiguration")
    with pytest.raises(ResourceNotFoundError) as raised:
        admin.apply_from_evaluation({"evaluationId": "e", "policyName": "nope"})
    assert_personalizer_error(raised.value, 404, "LearningSettingsNotFound")
    with pytest.raises(ResourceNotFoundError):
        admin.apply_from_evaluation({"evaluationId": "missing", "policyName": "x"})


@pytest.mark.parametrize(
    "body",
    [
        {"name": "n", "startTime": "yesterday", "endTime": "2030-01-01T00:00:00Z"},
        {"name": "n", "startTime": "2030-01-02T00:00:00Z", "endTime": "2030-01-01T00:00:00Z"},
        {"startTime": "2030-01-01T00:00:00Z", "endTime": "2030-01-02T00:00:00Z"},
        {"name": "n"},
        {"name": "n", "policies": [{"name": "p"}], **RANGE},
        {"name": "n\u0000", **RANGE},
    ],
)
def test_bad_evaluation_contracts_are_400s(history, body):
    with pytest.raises(HttpResponseError) as raised:
        history.admin().create_evaluation("bad", body)
    assert_personalizer_error(raised.value, 400, "InvalidEvaluationContract")
