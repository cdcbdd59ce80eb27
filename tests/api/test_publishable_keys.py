"""What a publishable key may do (issue 15, findings 2 and 3). It sits in web pages, so
anyone may use it: each test replays an attack from the security review.

- Outcomes: only for decisions the key was given (their ``outcome_token``), only of the
  client-reportable types, once per decision and type, never a value or a user-level
  outcome. Secret keys keep every right.
- Decisions: only on the configuration's client-side channels (``web``), the answer
  carries that channel's content and no costs; a configuration can require a secret key
  for everything.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.errors import Forbidden
from hpe_core.learn import outcomes
from hpe_core.learn.outcome_tokens import OutcomeTokens
from hpe_core.store.models import Decision, Outcome, utcnow
from hpe_core.tenancy.workspaces import Principal
from tests.api.conftest import assert_error
from tests.conftest import BASE
from web.extensions import app_runtime, app_state

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])

ACTIONS = [
    {
        "id": "hero",
        "cost": 0.25,
        "features": {"tone": "bold"},
        "rules": [{"key": "country", "not_in": ["XX"]}],
        "content": {
            "web": {"title": "Spring sale"},
            "email": {"subject": "Secret subject", "text": "Internal template {{ user_id }}"},
        },
    },
    {"id": "plain", "cost": 0.5, "content": {"web": {"title": "Hello"}}},
]
SETTINGS = {
    "channels": ["email", "web"],
    "actions": ACTIONS,
    "guardrails": {"frequency_caps": [{"channel": "email", "max": 2, "per_hours": 24}]},
}


@pytest.fixture
def config(create_config):
    return create_config(settings=SETTINGS)


@pytest.fixture
def public(make_tenant):
    return make_tenant("acme", kind="publishable")


def _decide(client, who, config_id, channel="web", user_id="alice", **extra):
    return client.post(
        f"{BASE}/{config_id}/decisions",
        json={"user_id": user_id, "channel": channel, **extra},
        headers=who.headers,
    )


def _decided(client, who, config_id, **kwargs) -> dict:
    response = _decide(client, who, config_id, **kwargs)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _report(client, who, config_id, body):
    return client.post(f"{BASE}/{config_id}/outcomes", json=body, headers=who.headers)


def _outcomes(app, config_id) -> list[Outcome]:
    session = app_runtime(app).sessions()
    try:
        return list(
            session.scalars(sa.select(Outcome).where(Outcome.config_id == uuid.UUID(config_id)))
        )
    finally:
        session.close()


def _decisions(app, config_id) -> list[Decision]:
    session = app_runtime(app).sessions()
    try:
        return list(
            session.scalars(sa.select(Decision).where(Decision.config_id == uuid.UUID(config_id)))
        )
    finally:
        session.close()


# --- Outcomes (finding 2) ----------------------------------------------------------------


def test_revenue_cannot_be_poisoned_with_a_publishable_key(app, client, tenant, public, config):
    """The review's request: 1,000 user-level conversions of 1e12 each. Refused (403) as a
    whole; nothing is stored and the revenue stays 0."""
    batch = {
        "outcomes": [
            {
                "user_id": "alice",
                "type": "conversion",
                "value": 1e12,
                "idempotency_key": f"fake-{n}",
            }
            for n in range(1000)
        ]
    }
    body = assert_error(_report(client, public, config["id"], batch), 403)
    assert {"user_id", "value", "idempotency_key", "outcome_token", "type"} <= set(
        body["errors"]["0"]
    )
    assert _outcomes(app, config["id"]) == []
    metrics = client.get(f"{BASE}/{config['id']}/metrics", headers=tenant.headers).get_json()
    assert metrics["summary"]["revenue"] == 0


def test_the_model_cannot_be_poisoned_with_values_on_given_decisions(app, client, public, config):
    """Even for decisions it was given, with their tokens: no value, no value event."""
    decided = _decided(client, public, config["id"])
    token = decided["outcome_token"]
    for body in (
        {"outcome_token": token, "type": "conversion", "value": 1e12},
        {"outcome_token": token, "type": "conversion"},
        {"outcome_token": token, "type": "click", "value": 1e12},
        {"decision_id": decided["decision_id"], "type": "click"},  # no token
    ):
        assert_error(_report(client, public, config["id"], body), 403)
    assert _outcomes(app, config["id"]) == []


def test_a_click_with_the_decisions_token_counts_once(app, client, public, config):
    """Impressions and clicks of a given decision count, each once, however often sent."""
    decided = _decided(client, public, config["id"])
    token = decided["outcome_token"]
    for _ in range(5):
        assert _report(client, public, config["id"], {"outcome_token": token, "type": "click"})
    batch = {"outcomes": [{"outcome_token": token, "type": "impression"}] * 3}
    answer = _report(client, public, config["id"], batch)
    assert answer.status_code == 202, answer.get_json()
    stored = _outcomes(app, config["id"])
    assert sorted((o.type, str(o.decision_id), o.value) for o in stored) == [
        ("click", decided["decision_id"], None),
        ("impression", decided["decision_id"], None),
    ]
    assert {o.user_id for o in stored} == {"alice"}  # the decision's user, not a claim


def test_a_token_names_one_decision_of_one_configuration(
    app, client, public, config, create_config
):
    """A forged or altered token, another decision's id, or another configuration's
    decision: refused, nothing stored."""
    first = _decided(client, public, config["id"])
    second = _decided(client, public, config["id"], user_id="bob")
    body, _, signature = first["outcome_token"].partition(".")
    other_body = second["outcome_token"].partition(".")[0]
    for token in (f"{other_body}.{signature}", f"{body}.{signature[:-2]}AA", "not-a-token"):
        answer = _report(client, public, config["id"], {"outcome_token": token, "type": "click"})
        assert_error(answer, 403)
    mismatch = {
        "outcome_token": first["outcome_token"],
        "decision_id": second["decision_id"],
        "type": "click",
    }
    assert_error(_report(client, public, config["id"], mismatch), 403)
    elsewhere = create_config(settings=SETTINGS)
    moved = {"outcome_token": first["outcome_token"], "type": "click"}
    assert_error(_report(client, public, elsewhere["id"], moved), 404)
    assert _outcomes(app, config["id"]) == [] and _outcomes(app, elsewhere["id"]) == []


@sqlite_only
def test_only_the_client_reportable_types_are_accepted(app, client, public, create_config):
    """publishable_keys.outcome_events decides which types a page may report."""
    settings = {**SETTINGS, "publishable_keys": {"outcome_events": ["signup"]}}
    config = create_config(settings=settings)
    token = _decided(client, public, config["id"])["outcome_token"]
    body = assert_error(
        _report(client, public, config["id"], {"outcome_token": token, "type": "click"}), 403
    )
    assert "signup" in body["errors"]["0"]["type"][0]
    answer = _report(client, public, config["id"], {"outcome_token": token, "type": "signup"})
    assert answer.status_code == 202
    assert [o.type for o in _outcomes(app, config["id"])] == ["signup"]


@sqlite_only
def test_a_token_expires(app, public, client, create_config):
    """A token is valid for publishable_keys.token_seconds after its decision."""
    settings = {**SETTINGS, "publishable_keys": {"token_seconds": 60}}
    config = create_config(settings=settings)
    token = _decided(client, public, config["id"])["outcome_token"]
    principal = Principal(workspace_id="acme", actor="hpe_pk_test", kind="publishable")
    event = outcomes.OutcomeEvent(type="click", outcome_token=token)
    tokens = app_state(app).touchpoints.outcome_tokens
    session = app_runtime(app).sessions()
    try:
        later = utcnow() + dt.timedelta(seconds=120)
        with pytest.raises(Forbidden, match="expired"):
            outcomes.record(
                session, principal, uuid.UUID(config["id"]), [event], now=later, tokens=tokens
            )
        recorded = outcomes.record(
            session, principal, uuid.UUID(config["id"]), [event], tokens=tokens
        )
        assert len(recorded.outcomes) == 1
    finally:
        session.rollback()
        session.close()


def test_secret_keys_keep_values_and_user_level_outcomes(app, client, tenant, config):
    """A secret key (a server) still reports conversions with values, by user or decision."""
    decided = _decided(client, tenant, config["id"], channel="email")
    batch = {
        "outcomes": [
            {"user_id": "alice", "type": "conversion", "value": 42.0, "idempotency_key": "o-1"},
            {"decision_id": decided["decision_id"], "type": "conversion", "value": 10.0},
        ]
    }
    answer = _report(client, tenant, config["id"], batch)
    assert answer.status_code == 202, answer.get_json()
    assert sorted(o.value for o in _outcomes(app, config["id"])) == [10.0, 42.0]


def test_the_token_survives_a_key_rotation(app, client, public, config):
    """A token signed with a key kept as a fallback still reports (pages already served)."""
    decision = _decided(client, public, config["id"])
    old = OutcomeTokens(app.config["SECRET_KEY"])
    assert old.verify(decision["outcome_token"], now=utcnow(), max_age=60) == uuid.UUID(
        decision["decision_id"]
    )


# --- Decisions (finding 3) ---------------------------------------------------------------


def test_publishable_keys_decide_on_client_side_channels_only(app, client, tenant, public, config):
    """Email decisions with a publishable key: 403 before anything is read or logged, so
    they neither spend the user's frequency cap nor tell whether the user unsubscribed."""
    for _ in range(3):
        assert_error(_decide(client, public, config["id"], channel="email"), 403)
    assert _decisions(app, config["id"]) == []
    # The real sends still have the whole cap (max 2 a day).
    for _ in range(2):
        _decided(client, tenant, config["id"], channel="email")
    capped = _decide(client, tenant, config["id"], channel="email")
    assert capped.status_code == 200 and capped.get_json()["reason"] == "frequency_cap"


def test_no_consent_oracle_for_publishable_keys(app, client, tenant, public, config):
    """An unsubscribed user's email decision answers 403 to a publishable key, exactly as
    for anyone else: no `no_consent` to learn from."""
    from hpe_core.decide import consent

    session = app_runtime(app).sessions()
    try:
        consent.set_status(
            session,
            workspace_id="acme",
            channel="email",
            user_id="alice",
            status="unsubscribed",
            source="test",
        )
        session.commit()
    finally:
        session.close()
    unsubscribed = _decide(client, public, config["id"], channel="email", user_id="alice")
    subscribed = _decide(client, public, config["id"], channel="email", user_id="bob")
    assert unsubscribed.status_code == subscribed.status_code == 403
    assert unsubscribed.get_json() == subscribed.get_json()


def test_a_publishable_answer_has_the_channels_content_and_no_costs(client, tenant, public, config):
    """The web answer shows content.web only: no email templates, no cost, no rules."""
    answer = _decided(client, public, config["id"], context={"country": "DE"}, candidates=["hero"])
    action = answer["action"]
    assert set(action) <= {"id", "features", "content"}
    assert set(action["content"]) == {"web"}
    assert "Secret subject" not in str(answer) and "cost" not in str(answer)
    full = _decided(
        client,
        tenant,
        config["id"],
        user_id="carol",
        context={"country": "DE"},
        candidates=["hero"],
    )
    assert "cost" in full["action"] and "email" in full["action"]["content"]


@sqlite_only
def test_a_configuration_can_require_a_secret_key_for_everything(
    app, client, tenant, public, create_config
):
    """publishable_keys.allowed false: publishable decisions and outcomes are 403."""
    config = create_config(settings={**SETTINGS, "publishable_keys": {"allowed": False}})
    assert_error(_decide(client, public, config["id"]), 403)
    token = _decided(client, tenant, config["id"])["outcome_token"]
    body = {"outcome_token": token, "type": "click"}
    assert_error(_report(client, public, config["id"], body), 403)
    assert _report(client, tenant, config["id"], body).status_code == 202


@sqlite_only
def test_the_client_side_channels_are_a_setting(client, public, create_config):
    """publishable_keys.channels names the channels a page may decide on."""
    settings = {
        "channels": ["web", "ads"],
        "actions": [{"id": "a"}],
        "publishable_keys": {"channels": ["ads"]},
    }
    config = create_config(settings=settings)
    assert_error(_decide(client, public, config["id"], channel="web"), 403)
    assert _decide(client, public, config["id"], channel="ads").status_code == 201


@sqlite_only
def test_the_publishable_keys_block_is_validated_and_defaulted(client, tenant, create_config):
    """Defaults are filled in and returned; wrong values are 422s naming the field."""
    config = create_config(settings={"actions": [{"id": "a"}]})
    assert config["settings"]["publishable_keys"] == {
        "allowed": True,
        "channels": ["web"],
        "outcome_events": ["impression", "view", "click"],
        "token_seconds": 3600,
    }
    for block, field in (
        ({"token_seconds": 5}, "token_seconds"),
        ({"outcome_events": ["no spaces"]}, "outcome_events"),
        ({"allowed": "yes"}, "allowed"),
        ({"everything": True}, "everything"),
    ):
        response = client.post(
            f"{BASE}/",
            json={"name": "x", "settings": {"actions": [{"id": "a"}], "publishable_keys": block}},
            headers=tenant.headers,
        )
        body = assert_error(response, 422)
        assert field in body["errors"]["settings"]["publishable_keys"], body
