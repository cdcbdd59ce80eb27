"""POST /{id}/decisions (DESIGN.md §2, §5): eligibility, guardrails, assignment, policy, log."""

from __future__ import annotations

import datetime as dt
import math
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.decide import assignment
from hpe_core.decide.results import NoDecisionReason
from hpe_core.store.models import Decision
from tests.api.conftest import assert_error
from tests.conftest import BASE
from web.extensions import app_runtime

#: Logic that has no SQL of its own runs on one backend: app setup dominates the run time.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])

TWO_ACTIONS = {"actions": [{"id": "a"}, {"id": "b"}]}
DECISION_KEYS = {
    "decision_id",
    "action_id",
    "action",
    "probability",
    "variant",
    "channel",  # additive (issue 17): the channel decided on (the engine's, with "auto")
    "model_version",
    "ranking",
    "outcome_token",  # additive (issue 15): what lets a web page report its outcomes
}


def _decide(client, tenant, config_id, user_id="u1", channel="email", context=None, **extra):
    body = {"user_id": user_id, "channel": channel, "context": context or {}, **extra}
    return client.post(f"{BASE}/{config_id}/decisions", json=body, headers=tenant.headers)


def _decided(client, tenant, config_id, **kwargs) -> dict:
    response = _decide(client, tenant, config_id, **kwargs)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _nothing(client, tenant, config_id, **kwargs) -> dict:
    response = _decide(client, tenant, config_id, **kwargs)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["action_id"] is None and body["decision_id"] is None, body
    return body


def _decision_rows(app, config_id) -> list[Decision]:
    session = app_runtime(app).sessions()
    try:
        return list(
            session.scalars(sa.select(Decision).where(Decision.config_id == uuid.UUID(config_id)))
        )
    finally:
        session.close()


def _zone_with_local_hour(hours: range) -> str:
    """A fixed-offset time zone whose current local hour is in ``hours`` (at least 1h from
    either end, so the test does not straddle a boundary)."""
    now = dt.datetime.now(dt.UTC)
    for offset in range(-12, 15):
        local = now + dt.timedelta(hours=offset)
        if local.hour in hours and local.hour - 1 in hours and local.hour + 1 in hours:
            return f"Etc/GMT{-offset:+d}" if offset else "UTC"
    raise AssertionError(f"no zone has a local hour in {hours}")


# --- The response --------------------------------------------------------------------


def test_decision_response_has_exactly_the_documented_shape(client, tenant, create_config):
    """201 {decision_id, action_id, action, probability, variant, model_version, ranking,
    outcome_token}."""
    settings = {"actions": [{"id": "a", "features": {"k": "x"}}, {"id": "b"}, {"id": "c"}]}
    config = create_config(settings=settings)
    body = _decided(client, tenant, config["id"], context={"segment": "new"})
    assert set(body) == DECISION_KEYS
    assert uuid.UUID(body["decision_id"])
    assert body["action_id"] in {"a", "b", "c"}
    assert body["action"]["id"] == body["action_id"]
    assert body["action"] == next(
        a for a in config["settings"]["actions"] if a["id"] == body["action_id"]
    )
    assert body["variant"] in {"treatment", "holdout"}
    assert body["model_version"] == 0  # nothing learned yet
    ranking = body["ranking"]
    assert sorted(r["action_id"] for r in ranking) == ["a", "b", "c"]
    probabilities = [r["probability"] for r in ranking]
    assert probabilities == sorted(probabilities, reverse=True)
    assert math.isclose(sum(probabilities), 1.0, abs_tol=1e-6)
    chosen = next(r for r in ranking if r["action_id"] == body["action_id"])
    assert body["probability"] == chosen["probability"] > 0


def test_decision_is_durably_logged_with_its_propensity(app, client, tenant, create_config):
    """The decision row holds context, eligible set, distribution, propensity, variant, version."""
    config = create_config(settings=TWO_ACTIONS)
    context = {"segment": "vip", "cart": {"items": 3}}
    body = _decided(client, tenant, config["id"], user_id="u-log", channel="web", context=context)
    [row] = _decision_rows(app, config["id"])
    assert row.id == uuid.UUID(body["decision_id"])
    assert row.workspace_id == tenant.id
    assert row.user_id == "u-log" and row.channel == "web"
    assert row.context == context
    assert row.eligible == ["a", "b"]
    assert math.isclose(sum(row.probabilities), 1.0, abs_tol=1e-6)
    ranked = {r["action_id"]: r["probability"] for r in body["ranking"]}
    assert dict(zip(row.eligible, row.probabilities, strict=True)) == pytest.approx(ranked)
    assert row.action_id == body["action_id"]
    assert row.probability == pytest.approx(body["probability"])
    assert row.variant == body["variant"]
    assert row.model_version == body["model_version"]
    assert row.source == "live" and row.learned_at is None
    wait = config["settings"]["reward"]["wait_seconds"]
    assert row.window_closes_at - row.created_at == dt.timedelta(seconds=wait)


@sqlite_only
def test_publishable_key_may_request_decisions(client, make_tenant, create_config):
    """A publishable key of the workspace gets a web decision (web pages call the API
    directly); other channels need a secret key (docs/operations.md, Security)."""
    config = create_config(settings=TWO_ACTIONS)
    publishable = make_tenant("acme", kind="publishable")
    _decided(client, publishable, config["id"], channel="web")


@sqlite_only
def test_another_workspaces_config_is_404(client, make_tenant, create_config):
    """A configuration of another workspace is not found, never revealed."""
    config = create_config(settings=TWO_ACTIONS)
    other = make_tenant("other")
    assert_error(_decide(client, other, config["id"]), 404)
    assert_error(_decide(client, other, uuid.uuid4()), 404)


def test_paused_or_inactive_config_is_409(app, client, tenant, create_config):
    """A PAUSED or INACTIVE configuration makes no decision: 409, nothing logged."""
    for status in ("PAUSED", "INACTIVE"):
        config = create_config(settings=TWO_ACTIONS, status=status)
        assert_error(_decide(client, tenant, config["id"]), 409)
        assert _decision_rows(app, config["id"]) == []


@sqlite_only
def test_pausing_a_config_stops_decisions_at_once(client, tenant, create_config):
    """The kill switch: after PATCH status=PAUSED the very next decision is 409."""
    config = create_config(settings=TWO_ACTIONS)
    _decided(client, tenant, config["id"])
    response = client.patch(
        f"{BASE}/{config['id']}", json={"status": "PAUSED"}, headers=tenant.headers
    )
    assert response.status_code == 200
    assert_error(_decide(client, tenant, config["id"]), 409)


# --- Bad requests --------------------------------------------------------------------


BAD_BODIES = [
    ({"channel": "email"}, "user_id"),
    ({"user_id": "", "channel": "email"}, "user_id"),
    ({"user_id": "x" * 257, "channel": "email"}, "user_id"),
    ({"user_id": 42, "channel": "email"}, "user_id"),
    ({"user_id": "u1", "channel": "email", "context": ["not", "an", "object"]}, "context"),
    ({"user_id": "u1", "channel": "email", "context": "text"}, "context"),
    ({"user_id": "u1"}, "channel"),
    ({"user_id": "u1", "channel": "email", "candidates": []}, "candidates"),
    ({"user_id": "u1", "channel": "email", "candidates": "a"}, "candidates"),
    ({"user_id": "u1", "channel": "email", "surprise": 1}, "surprise"),
]


@sqlite_only
def test_bad_decision_body_is_422_with_the_error_shape(app, client, tenant, create_config):
    """Missing user_id, non-object context, oversized user_id... → 422 naming the field."""
    config = create_config(settings=TWO_ACTIONS)
    for body, field in BAD_BODIES:
        response = client.post(
            f"{BASE}/{config['id']}/decisions", json=body, headers=tenant.headers
        )
        error = assert_error(response, 422)
        assert field in error["errors"], (body, error)
    response = client.post(f"{BASE}/{config['id']}/decisions", json=["u1"], headers=tenant.headers)
    assert_error(response, 422)
    assert _decision_rows(app, config["id"]) == []


HOSTILE_BODIES = [
    '{"user_id": "nul\\u0000", "channel": "email"}',
    '{"user_id": "lone\\ud800", "channel": "email"}',
    '{"user_id": "u1", "channel": "email", "context": {"x": NaN}}',
    '{"user_id": "u1", "channel": "email", "context": {"x": 1e400}}',
    '{"user_id": "u1", "channel": "email", "context": {"note": "a\\u0000b"}}',
    '{"user_id": "u1", "channel": "email", "context": {"k\\u0000": 1}}',
    '{"user_id": "u1", "channel": "email", "context": {"x": "\\udc00"}}',
]


def test_unstorable_text_or_numbers_are_422_never_500(app, client, tenant, create_config):
    """NUL, lone surrogates, NaN and Infinity (PostgreSQL refuses them) → 422 on both backends."""
    config = create_config(settings=TWO_ACTIONS)
    url = f"{BASE}/{config['id']}/decisions"
    headers = {**tenant.headers, "Content-Type": "application/json"}
    for body in HOSTILE_BODIES:
        error = assert_error(client.post(url, data=body, headers=headers), 422)
        assert set(error["errors"]) <= {"user_id", "context"}, (body, error)
    deep = '{"user_id": "u1", "channel": "email", "context": ' + "[" * 50_000
    assert_error(client.post(url, data=deep, headers=headers), 400)
    assert _decision_rows(app, config["id"]) == []
    _decided(client, tenant, config["id"], context={"emoji": "\U0001f600", "deep": {"er": [1]}})


@sqlite_only
def test_unknown_channel_is_422(client, tenant, create_config):
    """A channel the configuration does not use is rejected with a field error."""
    config = create_config(settings={**TWO_ACTIONS, "channels": ["email"]})
    error = assert_error(_decide(client, tenant, config["id"], channel="web"), 422)
    assert "channel" in error["errors"]
    error = assert_error(_decide(client, tenant, config["id"], channel="sms"), 422)
    assert "channel" in error["errors"]


@sqlite_only
def test_unknown_candidates_are_422(client, tenant, create_config):
    """Candidates naming an action the configuration lacks are rejected."""
    config = create_config(settings=TWO_ACTIONS)
    error = assert_error(_decide(client, tenant, config["id"], candidates=["a", "zzz"]), 422)
    assert "candidates" in error["errors"]
    assert "zzz" in str(error["errors"]["candidates"])


# --- Eligibility ---------------------------------------------------------------------


@sqlite_only
def test_candidates_restrict_the_choice(client, tenant, create_config):
    """With candidates, only those actions are ranked and chosen."""
    settings = {"actions": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}
    config = create_config(settings=settings)
    for user in range(6):
        body = _decided(client, tenant, config["id"], user_id=f"u{user}", candidates=["b", "c"])
        assert body["action_id"] in {"b", "c"}
        assert {r["action_id"] for r in body["ranking"]} == {"b", "c"}
    body = _decided(client, tenant, config["id"], candidates=["c"])
    assert body["action_id"] == "c" and body["probability"] == 1.0
    body = _decided(client, tenant, config["id"], candidates=["c", "a", "c"])
    assert sorted(r["action_id"] for r in body["ranking"]) == ["a", "c"]


@sqlite_only
def test_action_channels_restrict_the_choice(client, tenant, create_config):
    """An action limited to some channels is never chosen on another channel."""
    settings = {
        "actions": [
            {"id": "mail-only", "channels": ["email"]},
            {"id": "web-only", "channels": ["web"]},
        ]
    }
    config = create_config(settings=settings)
    assert _decided(client, tenant, config["id"], channel="web")["action_id"] == "web-only"
    assert _decided(client, tenant, config["id"], channel="email")["action_id"] == "mail-only"
    body = _nothing(client, tenant, config["id"], channel="ads")
    assert body["reason"] == "no_eligible_action"


@sqlite_only
def test_action_rules_restrict_the_choice(client, tenant, create_config):
    """Action rules on the context decide which actions are eligible."""
    settings = {
        "actions": [
            {"id": "dach", "rules": [{"key": "geo.country", "in": ["DE", "AT", "CH"]}]},
            {"id": "adult", "rules": [{"key": "age", "gte": 18}]},
            {"id": "anyone"},
        ]
    }
    config = create_config(settings=settings)

    def eligible(context):
        body = _decided(client, tenant, config["id"], context=context)
        return {r["action_id"] for r in body["ranking"]}

    assert eligible({"geo": {"country": "DE"}, "age": 30}) == {"dach", "adult", "anyone"}
    assert eligible({"geo": {"country": "FR"}, "age": 30}) == {"adult", "anyone"}
    assert eligible({"geo": {"country": "AT"}, "age": 12}) == {"dach", "anyone"}
    assert eligible({}) == {"anyone"}  # rules on missing keys fail
    assert eligible({"age": "thirty"}) == {"anyone"}  # a type mismatch fails, no 500


def test_nothing_eligible_is_200_with_a_reason_and_nothing_logged(
    app, client, tenant, create_config
):
    """No eligible action → 200 with action_id null and a reason; no decision row."""
    settings = {"actions": [{"id": "a", "rules": [{"key": "vip", "exists": True}]}]}
    config = create_config(settings=settings)
    body = _nothing(client, tenant, config["id"])
    assert body["reason"] == "no_eligible_action"
    assert body["ranking"] == []
    assert _decision_rows(app, config["id"]) == []


# --- Guardrails and schedule -----------------------------------------------------------


def test_frequency_cap_blocks_the_next_decision_on_that_channel_only(client, tenant, create_config):
    """max 2 per channel per window: the 3rd email decision is capped; web and others are not."""
    settings = {
        **TWO_ACTIONS,
        "guardrails": {"frequency_caps": [{"channel": "email", "max": 2, "per_hours": 24}]},
    }
    config = create_config(settings=settings)
    _decided(client, tenant, config["id"], user_id="capped", channel="email")
    _decided(client, tenant, config["id"], user_id="capped", channel="email")
    body = _nothing(client, tenant, config["id"], user_id="capped", channel="email")
    assert body["reason"] == "frequency_cap"
    _decided(client, tenant, config["id"], user_id="capped", channel="web")
    _decided(client, tenant, config["id"], user_id="someone-else", channel="email")


@sqlite_only
def test_quiet_hours_use_the_time_zone_in_the_context(client, tenant, create_config):
    """21:00-08:00 quiet hours: a user whose local time is night gets nothing; day is served."""
    settings = {
        **TWO_ACTIONS,
        "schedule": {
            "quiet_hours": {"start": "21:00", "end": "08:00", "timezone_context_key": "tz"}
        },
    }
    config = create_config(settings=settings)
    night = _zone_with_local_hour(range(0, 7))
    day = _zone_with_local_hour(range(10, 18))
    body = _nothing(client, tenant, config["id"], context={"tz": night})
    assert body["reason"] == "quiet_hours"
    _decided(client, tenant, config["id"], context={"tz": day})
    _decided(client, tenant, config["id"], context={})  # no zone: not quiet
    _decided(client, tenant, config["id"], context={"tz": "Not/AZone"})
    _decided(client, tenant, config["id"], context={"tz": "America"})  # a folder, not a zone


# --- Assignment and policy -----------------------------------------------------------


@sqlite_only
def test_the_same_user_always_gets_the_same_variant(client, tenant, create_config):
    """Assignment is a deterministic hash: repeated requests keep each user's variant."""
    config = create_config(settings={**TWO_ACTIONS, "holdout": {"percent": 50}})
    variants = {}
    for _round in range(2):
        for user in range(16):
            body = _decided(client, tenant, config["id"], user_id=f"user-{user}")
            variants.setdefault(user, set()).add(body["variant"])
    assert all(len(seen) == 1 for seen in variants.values()), variants
    assert {v for seen in variants.values() for v in seen} == {"treatment", "holdout"}


def test_holdout_share_matches_percent_and_raising_it_only_adds_holdout_users(
    sqlite_app, make_tenant_on
):
    """~holdout.percent of users are in the holdout; raising it moves users only into it."""
    client, tenant = sqlite_app.test_client(), make_tenant_on(sqlite_app, "acme")
    response = client.post(
        f"{BASE}/",
        json={"name": "h", "settings": {**TWO_ACTIONS, "holdout": {"percent": 20}}},
        headers=tenant.headers,
    )
    config_id = response.get_json()["id"]
    users = [f"person-{n}" for n in range(150)]
    before = {u: _decided(client, tenant, config_id, user_id=u)["variant"] for u in users}
    share = sum(v == "holdout" for v in before.values()) / len(users)
    tolerance = 4 * math.sqrt(0.2 * 0.8 / len(users))
    assert abs(share - 0.2) < tolerance, share
    # The API serves exactly the unit-tested hash (whose distribution is checked on 20k users).
    assert all(v == assignment.variant(config_id, u, 20) for u, v in before.items())

    response = client.patch(
        f"{BASE}/{config_id}",
        json={"settings": {"holdout": {"percent": 50}}},
        headers=tenant.headers,
    )
    assert response.status_code == 200
    app_runtime(sqlite_app).decisions.config_ttl = 0  # as another process would, later
    some = users[:60]
    after = {u: _decided(client, tenant, config_id, user_id=u)["variant"] for u in some}
    assert all(after[u] == "holdout" for u in some if before[u] == "holdout")
    moved = sum(before[u] == "treatment" and after[u] == "holdout" for u in some)
    assert moved >= 5, moved  # ~37% of the treatment users move


@sqlite_only
def test_holdout_with_a_fixed_baseline_gets_that_action(app, client, tenant, create_config):
    """Holdout users get the configured baseline action with probability 1."""
    settings = {
        "actions": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
        "holdout": {"percent": 50, "baseline": {"action_id": "b"}},
    }
    config = create_config(settings=settings)
    holdout_users = [
        u
        for u in (f"u{n}" for n in range(40))
        if assignment.variant(config["id"], u, 50) == "holdout"
    ][:5]
    assert holdout_users
    for user in holdout_users:
        body = _decided(client, tenant, config["id"], user_id=user)
        assert body["variant"] == "holdout"
        assert body["action_id"] == "b" and body["probability"] == 1.0
        assert body["ranking"][0] == {"action_id": "b", "probability": 1.0}
        assert sum(r["probability"] for r in body["ranking"][1:]) == 0
    # When the baseline is not eligible, the holdout falls back to uniform over the rest.
    body = _decided(client, tenant, config["id"], user_id=holdout_users[0], candidates=["a", "c"])
    assert body["probability"] == pytest.approx(0.5)


@sqlite_only
def test_manual_automation_serves_everyone_the_baseline(app, client, tenant, create_config):
    """manual: treatment users too get the baseline; the model's own choice is logged."""
    settings = {
        "actions": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
        "automation": "manual",
        "holdout": {"percent": 10, "baseline": {"action_id": "c"}},
    }
    config = create_config(settings=settings)
    variants = set()
    for user in range(8):
        body = _decided(client, tenant, config["id"], user_id=f"m{user}")
        assert body["action_id"] == "c" and body["probability"] == 1.0
        variants.add(body["variant"])
    assert "treatment" in variants
    rows = _decision_rows(app, config["id"])
    assert len(rows) == 8
    assert all(row.policy == "baseline" for row in rows)
    assert all(row.model_action_id in {"a", "b", "c"} for row in rows)


@sqlite_only
def test_assisted_treatment_is_served_by_the_model(app, client, tenant, create_config):
    """assisted (the default): treatment decisions come from the model policy."""
    config = create_config(settings={**TWO_ACTIONS, "holdout": {"percent": 10}})
    for user in range(6):
        _decided(client, tenant, config["id"], user_id=f"t{user}")
    rows = _decision_rows(app, config["id"])
    assert {row.policy for row in rows if row.variant == "treatment"} == {"model"}
    assert {row.policy for row in rows if row.variant == "holdout"} <= {"baseline"}


@sqlite_only
def test_the_openapi_document_lists_every_no_decision_reason(client):
    """The answer's ``reason`` is documented from the enum the engine answers with."""
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"][f"{BASE}/{{config_id}}/decisions"]["post"]
    schema = operation["responses"]["201"]["content"]["application/json"]["schema"]
    name = schema["$ref"].rsplit("/", 1)[-1]
    description = document["components"]["schemas"][name]["properties"]["reason"]["description"]
    assert all(reason in description for reason in NoDecisionReason)
