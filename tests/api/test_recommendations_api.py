"""GET /{id}/recommendations, POST .../apply and .../dismiss, and the channel exclusion
guardrail, through the REST API on both databases.

Recommendations come from a real measurement pass (the inline backend's job, as the
sweeper enqueues it) over decisions and outcomes seeded with controlled engagement.
"""

from __future__ import annotations

import uuid

import pytest

from hpe_core.store.models import Config
from tests.api.conftest import assert_error
from tests.conftest import BASE
from tests.core.recommend.test_circuit_breaker import seed
from web.extensions import app_runtime
from worker.queues import sweep_measurements

#: Action "a" engages 4% of treatment, "b" and "c" 30%: "a" should be retired.
SETTINGS = {
    "actions": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
    "holdout": {"percent": 10},
}


def _measure(app) -> None:
    """One measurement pass for every configuration, as the sweeper runs it."""
    backend = app_runtime(app).jobs
    assert sweep_measurements(backend, app_runtime(app).sessions) >= 1
    backend.run_pending()


def _seed_bad_action(app, config_id: str) -> None:
    session = app_runtime(app).sessions()
    try:
        config = session.get(Config, uuid.UUID(config_id))
        seed(session, config, variant="treatment", count=400, engaged=16, action_id="a")
        for action in ("b", "c"):
            seed(session, config, variant="treatment", count=400, engaged=120, action_id=action)
        seed(session, config, variant="holdout", count=133, engaged=40, action_id="b")
    finally:
        session.close()


def _list(client, tenant, config_id, query: str = "") -> list[dict]:
    response = client.get(f"{BASE}/{config_id}/recommendations{query}", headers=tenant.headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["config_id"] == config_id
    return body["recommendations"]


def _apply(client, tenant, config_id, recommendation_id):
    return client.post(
        f"{BASE}/{config_id}/recommendations/{recommendation_id}/apply", headers=tenant.headers
    )


@pytest.fixture
def retire(app, client, tenant, create_config):
    """A configuration with an open retire_action recommendation for "a"."""
    config = create_config(settings=SETTINGS)
    _seed_bad_action(app, config["id"])
    _measure(app)
    [recommendation] = [
        r for r in _list(client, tenant, config["id"]) if r["kind"] == "retire_action"
    ]
    return config, recommendation


def test_a_measurement_pass_raises_a_recommendation_with_evidence(client, tenant, retire):
    config, recommendation = retire
    assert set(recommendation) == {
        "id", "kind", "subject", "severity", "title", "detail", "evidence", "patch",
        "status", "auto_apply", "created_at", "updated_at", "applied_at", "applied_by",
    }  # fmt: skip
    assert recommendation["subject"] == "a" and recommendation["status"] == "open"
    assert recommendation["auto_apply"] is True and recommendation["applied_at"] is None
    assert recommendation["evidence"]["decisions"] == 400
    assert recommendation["evidence"]["engagements"] == 16
    assert recommendation["evidence"]["rest_engagement_rate"] == pytest.approx(0.3)
    assert [a["id"] for a in recommendation["patch"]["actions"]] == ["b", "c"]
    assert recommendation["title"]


def test_apply_changes_the_settings_and_logs_it(client, tenant, retire):
    config, recommendation = retire
    response = _apply(client, tenant, config["id"], recommendation["id"])
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["recommendation"]["status"] == "applied"
    assert body["recommendation"]["applied_by"] == tenant.key[:15]
    assert body["recommendation"]["applied_at"]
    assert [a["id"] for a in body["config"]["settings"]["actions"]] == ["b", "c"]
    stored = client.get(f"{BASE}/{config['id']}", headers=tenant.headers).get_json()
    assert [a["id"] for a in stored["settings"]["actions"]] == ["b", "c"]

    response = client.get(
        f"{BASE}/{config['id']}/activities?type=recommendation.applied", headers=tenant.headers
    )
    [logged] = response.get_json()
    assert logged["data"]["kind"] == "retire_action" and logged["data"]["subject"] == "a"
    assert logged["data"]["evidence"] == recommendation["evidence"]
    assert logged["data"]["patch"] == body["recommendation"]["patch"]
    response = client.get(
        f"{BASE}/{config['id']}/activities?type=config.updated", headers=tenant.headers
    )
    assert len(response.get_json()) == 1

    body = assert_error(_apply(client, tenant, config["id"], recommendation["id"]), 409)
    assert "applied" in body["message"]
    assert all(r["kind"] != "retire_action" for r in _list(client, tenant, config["id"]))
    [applied] = _list(client, tenant, config["id"], "?status=applied")
    assert applied["id"] == recommendation["id"]


def test_applied_recommendation_stays_applied_after_the_next_pass(app, client, tenant, retire):
    config, recommendation = retire
    assert _apply(client, tenant, config["id"], recommendation["id"]).status_code == 200
    _measure(app)
    statuses = {r["id"]: r["status"] for r in _list(client, tenant, config["id"], "?status=all")}
    assert statuses[recommendation["id"]] == "applied"


def test_dismiss(client, tenant, retire):
    config, recommendation = retire
    url = f"{BASE}/{config['id']}/recommendations/{recommendation['id']}/dismiss"
    response = client.post(url, headers=tenant.headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["recommendation"]["status"] == "dismissed"
    assert_error(client.post(url, headers=tenant.headers), 409)
    assert_error(_apply(client, tenant, config["id"], recommendation["id"]), 409)
    [dismissed] = _list(client, tenant, config["id"], "?status=dismissed")
    assert dismissed["id"] == recommendation["id"]


def test_unknown_and_foreign_recommendations_are_404(client, tenant, make_tenant, retire):
    config, recommendation = retire
    assert_error(_apply(client, tenant, config["id"], uuid.uuid4()), 404)
    stranger = make_tenant("stranger")
    assert_error(_apply(client, stranger, config["id"], recommendation["id"]), 404)
    response = client.get(f"{BASE}/{config['id']}/recommendations", headers=stranger.headers)
    assert_error(response, 404)
    # Another configuration of the same workspace does not own it either.
    other = client.post(
        f"{BASE}/", json={"name": "Other", "settings": SETTINGS}, headers=tenant.headers
    ).get_json()
    assert_error(_apply(client, tenant, other["id"], recommendation["id"]), 404)
    response = client.post(
        f"{BASE}/{config['id']}/recommendations/not-a-uuid/apply", headers=tenant.headers
    )
    assert_error(response, 404)


def test_status_filter(client, tenant, create_config):
    config = create_config(settings=SETTINGS)
    assert _list(client, tenant, config["id"]) == []
    assert _list(client, tenant, config["id"], "?status=all") == []
    body = assert_error(
        client.get(f"{BASE}/{config['id']}/recommendations?status=closed", headers=tenant.headers),
        422,
    )
    assert "status" in body["errors"]


def test_keys(client, tenant, make_tenant, create_config):
    config = create_config(settings=SETTINGS)
    url = f"{BASE}/{config['id']}/recommendations"
    assert_error(client.get(url), 401)
    publishable = make_tenant("acme", kind="publishable")
    assert_error(client.get(url, headers=publishable.headers), 403)


def test_an_alarm_cannot_be_applied(app, client, tenant, create_config):
    """A holdout that receives nothing (SRM): a critical alarm with no patch; apply → 409."""
    config = create_config(settings=SETTINGS)
    session = app_runtime(app).sessions()
    try:
        seed(session, session.get(Config, uuid.UUID(config["id"])), variant="treatment",
             count=300, engaged=30)  # fmt: skip
    finally:
        session.close()
    _measure(app)
    [alarm] = [r for r in _list(client, tenant, config["id"]) if r["kind"] == "srm_alarm"]
    assert alarm["severity"] == "critical" and alarm["patch"] is None
    assert alarm["auto_apply"] is False
    body = assert_error(_apply(client, tenant, config["id"], alarm["id"]), 409)
    assert "investigate" in body["message"]


def test_autonomous_mode_applies_by_itself_assisted_does_not(app, client, tenant, create_config):
    assisted = create_config(name="Assisted", settings=SETTINGS)
    autonomous = create_config(name="Autonomous", settings=SETTINGS | {"automation": "autonomous"})
    for config in (assisted, autonomous):
        _seed_bad_action(app, config["id"])
    _measure(app)

    def actions(config):
        body = client.get(f"{BASE}/{config['id']}", headers=tenant.headers).get_json()
        return [a["id"] for a in body["settings"]["actions"]]

    assert actions(assisted) == ["a", "b", "c"]
    assert [r["kind"] for r in _list(client, tenant, assisted["id"])].count("retire_action") == 1
    assert actions(autonomous) == ["b", "c"]
    [applied] = [
        r
        for r in _list(client, tenant, autonomous["id"], "?status=applied")
        if r["kind"] == "retire_action"
    ]
    assert applied["applied_by"] == "engine"
    response = client.get(
        f"{BASE}/{autonomous['id']}/activities?type=recommendation.applied", headers=tenant.headers
    )
    [logged] = response.get_json()
    assert logged["actor"] == "engine"


# --- the channel exclusion guardrail ------------------------------------------------------


def _decide(client, tenant, config_id, channel, context):
    return client.post(
        f"{BASE}/{config_id}/decisions",
        json={"user_id": f"u-{uuid.uuid4().hex[:8]}", "channel": channel, "context": context},
        headers=tenant.headers,
    )


def test_channel_exclusion_answers_excluded(client, tenant, create_config):
    rule = {"channel": "email", "key": "segment", "in": ["bargain"]}
    config = create_config(settings=SETTINGS | {"guardrails": {"channel_exclusions": [rule]}})
    response = _decide(client, tenant, config["id"], "email", {"segment": "bargain"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["action_id"] is None and body["reason"] == "excluded"
    assert body["decision_id"] is None
    assert _decide(client, tenant, config["id"], "web", {"segment": "bargain"}).status_code == 201
    assert _decide(client, tenant, config["id"], "email", {"segment": "vip"}).status_code == 201
    assert _decide(client, tenant, config["id"], "email", {}).status_code == 201


def test_channel_exclusion_on_an_unused_channel_is_422(client, tenant, create_config):
    config = create_config(settings=SETTINGS | {"channels": ["email", "web"]})
    rule = {"channel": "ads", "key": "segment", "in": ["bargain"]}
    response = client.patch(
        f"{BASE}/{config['id']}",
        json={"settings": {"guardrails": {"channel_exclusions": [rule]}}},
        headers=tenant.headers,
    )
    body = assert_error(response, 422)
    assert (
        "ads" in body["errors"]["settings"]["guardrails"]["channel_exclusions"]["0"]["channel"][0]
    )


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_endpoints_are_documented_in_openapi(client):
    """List, apply and dismiss are in the OpenAPI document with their responses."""
    document = client.get("/api/v1/openapi.json").get_json()
    paths = document["paths"]
    listing = paths[f"{BASE}/{{config_id}}/recommendations"]["get"]
    assert listing["summary"] == "List recommendations"
    assert {p["name"] for p in listing["parameters"] if p["in"] == "query"} == {"status"}
    schema = listing["responses"]["200"]["content"]["application/json"]["schema"]
    name = schema["$ref"].rsplit("/", 1)[-1]
    assert set(document["components"]["schemas"][name]["properties"]) == {
        "config_id",
        "recommendations",
    }
    for action, summary, codes in (
        ("apply", "Apply a recommendation", {"200", "404", "409"}),
        ("dismiss", "Dismiss a recommendation", {"200", "404", "409"}),
    ):
        operation = paths[f"{BASE}/{{config_id}}/recommendations/{{recommendation_id}}/{action}"]
        assert operation["post"]["summary"] == summary
        assert codes <= set(operation["post"]["responses"])
