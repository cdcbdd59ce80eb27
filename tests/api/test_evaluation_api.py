"""GET /{id}/evaluation (DESIGN.md §5): off-policy estimates over live and imported decisions."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from hpe_core.learn import learning
from hpe_core.measure.evaluation import POLICIES
from tests.api.conftest import assert_error
from tests.conftest import BASE
from web.extensions import app_runtime

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])

SETTINGS = {
    "actions": [{"id": "a", "features": {"tone": "bold"}}, {"id": "b"}, {"id": "c"}],
    "holdout": {"percent": 50},
    "reward": {"events": {"click": 1.0}, "value_events": [], "wait_seconds": 60},
}
ESTIMATE_KEYS = {"ips", "snips", "dr", "dm", "ci_low", "ci_high", "n", "ess"}
ESTIMATE_KEYS |= {"ips_ci", "snips_ci", "dr_ci"}
IMPORTED_REWARDS = (1.0, 0.0, 0.5, 1.0)


def _evaluation(client, tenant, config_id, query: str = "") -> dict:
    response = client.get(f"{BASE}/{config_id}/evaluation{query}", headers=tenant.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _traffic_learned_and_imported(app, client, tenant, config_id) -> list[float]:
    """16 live decisions (every third clicked), 4 imported ones, then a learning run.

    :returns: every decision's reward
    """
    rewards = []
    for n in range(16):
        response = client.post(
            f"{BASE}/{config_id}/decisions",
            json={"user_id": f"user-{n}", "channel": "email", "context": {"segment": n % 2}},
            headers=tenant.headers,
        )
        assert response.status_code == 201, response.get_json()
        clicked = n % 3 == 0
        if clicked:
            event = {"decision_id": response.get_json()["decision_id"], "type": "click"}
            response = client.post(
                f"{BASE}/{config_id}/outcomes", json=event, headers=tenant.headers
            )
            assert response.status_code == 202, response.get_json()
        rewards.append(1.0 if clicked else 0.0)
    now = dt.datetime.now(dt.UTC)
    lines = [
        {
            "user_id": f"old-{n}",
            "channel": "web",
            "timestamp": (now - dt.timedelta(days=2)).isoformat(),
            "context": {"segment": n % 2},
            "action_id": "abc"[n % 3],
            "probability": 0.5,
            "reward": reward,
        }
        for n, reward in enumerate(IMPORTED_REWARDS)
    ]
    response = client.post(
        f"{BASE}/{config_id}/imports",
        data="\n".join(json.dumps(line) for line in lines),
        headers={**tenant.headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 202 and response.get_json()["accepted"] == 4
    rewards.extend(IMPORTED_REWARDS)
    with app_runtime(app).sessions() as session:
        report = learning.learn_all_closed(
            session, uuid.UUID(config_id), now=now + dt.timedelta(minutes=5)
        )
    assert report.learned == 20, report
    return rewards


def test_live_and_imported_decisions_are_evaluated(app, client, tenant, create_config):
    """After learning, every decision counts; the logged policy's value is the mean reward,
    and each policy has numbers with intervals that contain its DR estimate."""
    config = create_config(settings=SETTINGS)
    rewards = _traffic_learned_and_imported(app, client, tenant, config["id"])
    body = _evaluation(client, tenant, config["id"])
    assert body["config_id"] == config["id"]
    today = dt.datetime.now(dt.UTC).date()
    assert (body["from"], body["to"]) == (str(today - dt.timedelta(days=29)), str(today))
    assert body["n"] == 20 and body["skipped"] == 0
    assert body["model_version"] == 1
    assert set(body["policies"]) == {"model", "baseline", "logged"}
    for name, estimate in body["policies"].items():
        assert set(estimate) == ESTIMATE_KEYS, name
        assert estimate["n"] == 20
        assert 0 < estimate["ess"] <= 20 + 1e-9
        assert estimate["ci_low"] <= estimate["dr"] <= estimate["ci_high"], name
        assert [estimate["ci_low"], estimate["ci_high"]] == estimate["dr_ci"]
    logged = body["policies"]["logged"]
    mean = sum(rewards) / len(rewards)
    assert logged["ips"] == pytest.approx(mean) and logged["dr"] == pytest.approx(mean)
    assert logged["ess"] == pytest.approx(20)
    model = body["reward_model"]
    assert model["name"] == "shrunk_means" and model["global_mean"] == pytest.approx(mean)
    assert sum(action["n"] for action in model["actions"].values()) == 20


def test_imported_history_outside_the_default_range_is_pointed_to(client, tenant, create_config):
    """History imported months ago: the default range finds n 0, and `available` names the
    imported dates (with a hint saying to pass them); with them as from/to it is evaluated."""
    config = create_config(settings=SETTINGS)
    today = dt.datetime.now(dt.UTC).date()
    first, last = today - dt.timedelta(days=200), today - dt.timedelta(days=150)
    days = (first, first, last, last)
    lines = [
        {
            "user_id": f"old-{n}",
            "channel": "web",
            "timestamp": f"{day}T09:00:00Z",
            "context": {"segment": n % 2},
            "action_id": "abc"[n % 3],
            "probability": 0.5,
            "reward": reward,
        }
        for n, (day, reward) in enumerate(zip(days, IMPORTED_REWARDS, strict=True))
    ]
    response = client.post(
        f"{BASE}/{config['id']}/imports",
        data="\n".join(json.dumps(line) for line in lines),
        headers={**tenant.headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 202 and response.get_json()["accepted"] == 4

    body = _evaluation(client, tenant, config["id"])
    assert body["n"] == 0 and body["from"] == str(today - dt.timedelta(days=29))
    assert body["available"] == {"from": str(first), "to": str(last)}
    assert f"from={first}&to={last}" in body["hint"], body["hint"]

    body = _evaluation(client, tenant, config["id"], f"?from={first}&to={last}")
    assert body["n"] == 4
    assert body["available"] is None and body["hint"] is None
    assert body["policies"]["logged"]["ips"] == pytest.approx(sum(IMPORTED_REWARDS) / 4)


def test_no_evaluable_decisions_at_all_say_so(client, tenant, create_config):
    """A configuration without evaluable decisions: `available` is null, the hint says why."""
    config = create_config(settings=SETTINGS)
    response = client.post(
        f"{BASE}/{config['id']}/decisions",
        json={"user_id": "u1", "channel": "email", "context": {}},
        headers=tenant.headers,
    )
    assert response.status_code == 201  # logged, but its reward window is still open
    body = _evaluation(client, tenant, config["id"])
    assert body["n"] == 0 and body["available"] is None
    assert "no evaluable decisions yet" in body["hint"], body["hint"]


@sqlite_only
def test_policies_may_be_comma_separated_or_repeated(client, tenant, create_config):
    """policies=baseline&policies=logged,model_greedy evaluates exactly those three."""
    config = create_config(settings=SETTINGS)
    body = _evaluation(
        client, tenant, config["id"], "?policies=baseline&policies=logged,model_greedy"
    )
    assert set(body["policies"]) == {"baseline", "logged", "model_greedy"}
    # Nothing logged yet: no numbers, and no NaN either.
    assert body["n"] == 0
    assert body["policies"]["baseline"]["dr"] is None
    assert body["policies"]["baseline"]["ips_ci"] == [None, None]


@sqlite_only
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?from=2026-02-02&to=2026-02-01", "from"),
        ("?from=2025-01-01&to=2026-01-02", "to"),
        ("?policies=model,best", "policies"),
        ("?policies=", "policies"),
        ("?limit=0", "limit"),
        (f"?limit={200_001}", "limit"),
        ("?limit=many", "limit"),
        ("?from=yesterday", "from"),
    ],
)
def test_bad_parameters_are_422_with_the_error_shape(client, tenant, create_config, query, field):
    """Reversed or over-long ranges, unknown policies and bad limits name the bad field."""
    config = create_config(settings=SETTINGS)
    response = client.get(f"{BASE}/{config['id']}/evaluation{query}", headers=tenant.headers)
    body = assert_error(response, 422)
    assert field in body["errors"], body
    if field == "policies" and "best" in query:
        assert all(name in body["message"] for name in POLICIES), body


@sqlite_only
def test_keys_and_workspaces(client, tenant, make_tenant, create_config):
    """No key → 401; a publishable key → 403; another workspace's or an unknown id → 404."""
    config = create_config(settings=SETTINGS)
    path = f"{BASE}/{config['id']}/evaluation"
    assert_error(client.get(path), 401)
    assert_error(client.get(path, headers=make_tenant("acme", kind="publishable").headers), 403)
    assert_error(client.get(path, headers=make_tenant("rival").headers), 404)
    assert_error(client.get(f"{BASE}/{uuid.uuid4()}/evaluation", headers=tenant.headers), 404)


@sqlite_only
def test_the_endpoint_is_documented_in_openapi(client):
    """The operation, its query parameters and its response schema are in the document."""
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"][f"{BASE}/{{config_id}}/evaluation"]["get"]
    assert {p["name"] for p in operation["parameters"] if p["in"] == "query"} == {
        "from",
        "to",
        "policies",
        "limit",
    }
    assert "off-policy" in operation["summary"].lower()
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    name = schema["$ref"].rsplit("/", 1)[-1]
    properties = document["components"]["schemas"][name]["properties"]
    assert {"config_id", "from", "to", "model_version", "n", "policies"} <= set(properties)
    assert {"available", "hint"} <= set(properties)
