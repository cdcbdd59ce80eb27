"""POST /{id}/decisions/batch (shared/DESIGN.md §5): many decisions in one call, in request
order, through the single decision's pipeline, logged in one transaction."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from hpe_core.decide import assignment, consent
from hpe_core.store.models import Decision, Delivery
from tests.api.conftest import assert_error
from tests.conftest import BASE, make_test_app
from web.extensions import app_runtime

ACTIONS = [
    {"id": "email-only", "channels": ["email"], "features": {"k": "e"}},
    {"id": "web-only", "channels": ["web"], "features": {"k": "w"}},
    {"id": "both", "features": {"k": "b"}},
]
SETTINGS = {"actions": ACTIONS, "channels": ["email", "web"]}


def _batch(client, tenant, config_id, requests):
    return client.post(
        f"{BASE}/{config_id}/decisions/batch", json={"requests": requests}, headers=tenant.headers
    )


def _rows(app, config_id) -> list[Decision]:
    session = app_runtime(app).sessions()
    try:
        return list(
            session.scalars(sa.select(Decision).where(Decision.config_id == uuid.UUID(config_id)))
        )
    finally:
        session.close()


def _count(app, model) -> int:
    session = app_runtime(app).sessions()
    try:
        return session.scalar(sa.select(sa.func.count()).select_from(model))
    finally:
        session.close()


def test_decisions_answer_each_request_in_request_order(app, client, tenant, create_config):
    """201 {"decisions": [...]}: one entry per request, in order, each shaped like a single
    decision; nothing eligible answers action_id null with a reason, and logs nothing."""
    config = create_config(settings=SETTINGS)
    requests = [
        {"user_id": f"u{i}", "channel": "email" if i % 2 else "web", "context": {"i": i}}
        for i in range(40)
    ]
    requests[7] = {"user_id": "u7", "channel": "email", "candidates": ["web-only"]}
    response = _batch(client, tenant, config["id"], requests)
    assert response.status_code == 201, response.get_json()
    decisions = response.get_json()["decisions"]
    assert len(decisions) == 40
    nothing = decisions[7]
    assert nothing["decision_id"] is None and nothing["action_id"] is None
    assert nothing["reason"] == "no_eligible_action"
    single = client.post(
        f"{BASE}/{config['id']}/decisions", json=requests[0], headers=tenant.headers
    ).get_json()
    logged = [d for i, d in enumerate(decisions) if i != 7]
    for decision in logged:
        assert set(decision) == set(single)
    rows = {row.id: row for row in _rows(app, config["id"])}
    assert len(rows) == 40  # 39 from the batch, 1 single
    for request, decision in zip(requests, decisions, strict=True):
        if decision["decision_id"] is None:
            continue
        row = rows[uuid.UUID(decision["decision_id"])]
        assert (row.user_id, row.channel) == (request["user_id"], request["channel"])
        assert row.context == request.get("context", {})
        assert row.action_id == decision["action_id"]
        assert row.probability == pytest.approx(decision["probability"])
        assert row.variant == decision["variant"]
        # The same deterministic assignment as a single decision.
        expected = assignment.variant(uuid.UUID(config["id"]), request["user_id"], 10)
        assert decision["variant"] == expected
        # The channel's eligibility: a web request never gets the email-only action.
        assert (
            decision["action_id"] != f"{'web' if request['channel'] == 'email' else 'email'}-only"
        )


def test_guardrails_and_consent_apply_inside_one_batch(app, client, tenant, create_config):
    """A frequency cap counts the batch's own earlier decisions; a withdrawn consent gives
    no_consent, as for single decisions."""
    settings = {
        **SETTINGS,
        "guardrails": {"frequency_caps": [{"channel": "email", "max": 2, "per_hours": 24}]},
    }
    config = create_config(settings=settings)
    session = app_runtime(app).sessions()
    consent.set_status(
        session,
        workspace_id=tenant.id,
        channel="email",
        user_id="gone",
        status="unsubscribed",
        source="test",
    )
    session.commit()
    session.close()
    requests = [{"user_id": "ada", "channel": "email"} for _ in range(4)]
    requests += [{"user_id": "gone", "channel": "email"}, {"user_id": "ada", "channel": "web"}]
    response = _batch(client, tenant, config["id"], requests)
    assert response.status_code == 201, response.get_json()
    decisions = response.get_json()["decisions"]
    reasons = [d.get("reason") if d["decision_id"] is None else "ok" for d in decisions]
    assert reasons == ["ok", "ok", "frequency_cap", "frequency_cap", "no_consent", "ok"]
    assert len(_rows(app, config["id"])) == 3
    # The cap keeps counting across calls: stored rows now.
    again = _batch(client, tenant, config["id"], [{"user_id": "ada", "channel": "email"}])
    assert again.get_json()["decisions"][0]["reason"] == "frequency_cap"


def test_a_batch_reads_its_users_recent_decisions_once(app, client, tenant, create_config):
    """Stored decisions count against the cap inside a batch, read in one query for all of
    its users (no count query per decision)."""
    settings = {
        **SETTINGS,
        "guardrails": {"frequency_caps": [{"channel": "email", "max": 2, "per_hours": 24}]},
    }
    config = create_config(settings=settings)
    for user in ("ada", "ada", "bob"):
        single = {"user_id": user, "channel": "email"}
        response = client.post(
            f"{BASE}/{config['id']}/decisions", json=single, headers=tenant.headers
        )
        assert response.status_code == 201
    statements = []
    engine = app_runtime(app).engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        users = ["ada", "bob", "bob", "cyd", "cyd", "cyd"]
        requests = [{"user_id": user, "channel": "email"} for user in users]
        response = _batch(client, tenant, config["id"], requests)
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    assert response.status_code == 201, response.get_json()
    reasons = [d.get("reason") or "ok" for d in response.get_json()["decisions"]]
    assert reasons == ["frequency_cap", "ok", "frequency_cap", "ok", "ok", "frequency_cap"]
    assert not [s for s in statements if "count(" in s.lower()]


def test_more_than_ten_thousand_requests_is_a_422_and_nothing_is_written(
    app, client, tenant, create_config
):
    config = create_config(settings=SETTINGS)
    requests = [{"user_id": f"u{i}", "channel": "email"} for i in range(10_001)]
    body = assert_error(_batch(client, tenant, config["id"], requests), 422)
    assert "10,000" in str(body["errors"]["requests"])
    assert_error(_batch(client, tenant, config["id"], []), 422)
    assert _rows(app, config["id"]) == []


def test_an_invalid_request_is_named_and_nothing_is_written(app, client, tenant, create_config):
    """A schema error names the request's index; an error only the configuration can see
    (an unknown channel or candidate) does too; either way no decision is kept."""
    config = create_config(settings=SETTINGS)
    good = {"user_id": "u1", "channel": "email"}
    body = assert_error(
        _batch(client, tenant, config["id"], [good, good, {"channel": "email"}]), 422
    )
    assert body["errors"]["requests"] == {"2": {"user_id": ["Missing data for required field."]}}
    body = assert_error(
        _batch(client, tenant, config["id"], [good, {**good, "context": {"x": "\u0000"}}]), 422
    )
    assert "1" in body["errors"]["requests"]
    unknown = {"user_id": "u3", "channel": "email", "candidates": ["nope"]}
    body = assert_error(_batch(client, tenant, config["id"], [good, good, unknown]), 422)
    assert body["errors"]["requests"]["2"]["candidates"]
    assert "Request 2" in body["message"]
    body = assert_error(
        _batch(client, tenant, config["id"], [good, {"user_id": "u", "channel": "sms"}]), 422
    )
    assert body["errors"]["requests"]["1"]["channel"]
    assert _rows(app, config["id"]) == []


def test_a_paused_configuration_or_a_publishable_key_decides_nothing(
    app, client, tenant, make_tenant, create_config
):
    config = create_config(settings=SETTINGS)
    public = make_tenant("acme", kind="publishable")
    assert_error(_batch(client, public, config["id"], [{"user_id": "u", "channel": "web"}]), 403)
    client.patch(f"{BASE}/{config['id']}", json={"status": "PAUSED"}, headers=tenant.headers)
    requests = [{"user_id": "u", "channel": "email"}]
    assert_error(_batch(client, tenant, config["id"], requests), 409)
    assert_error(_batch(client, tenant, str(uuid.uuid4()), requests), 404)
    assert _rows(app, config["id"]) == []


def test_a_full_batch_of_ten_thousand_is_logged(app, client, tenant, create_config):
    """10,000 requests in one call: every decision logged (COPY on PostgreSQL, one
    multi-row INSERT on SQLite), every answer's id a stored row."""
    config = create_config(settings=SETTINGS)
    requests = [
        {"user_id": f"user-{i}", "channel": ("email", "web")[i % 2], "context": {"n": i % 7}}
        for i in range(10_000)
    ]
    response = _batch(client, tenant, config["id"], requests)
    assert response.status_code == 201
    decisions = response.get_json()["decisions"]
    stored = {row.id: row.user_id for row in _rows(app, config["id"])}
    assert len(stored) == 10_000
    assert [stored[uuid.UUID(d["decision_id"])] for d in decisions] == [
        r["user_id"] for r in requests
    ]


@pytest.fixture
def ads_app(database_url, tmp_path):
    app = make_test_app(database_url, tmp_path, PLUGINS={"ads": {"drop_dir": str(tmp_path)}})
    yield app
    app_runtime(app).engine.dispose()


def test_deliveries_are_stored_with_their_decisions_and_enqueued(ads_app, make_tenant_on):
    """deliver on each request: one pending delivery per decision in the same transaction
    (after its decision row: the foreign key holds on PostgreSQL), each enqueued."""
    app = ads_app
    client, tenant = app.test_client(), make_tenant_on(app, "acme")
    settings = {"actions": [{"id": "spring", "content": {"ads": {"audience": "s"}}}]}
    response = client.post(
        f"{BASE}/",
        json={"name": "ads", "settings": {**settings, "channels": ["ads"]}},
        headers=tenant.headers,
    )
    config_id = response.get_json()["id"]
    requests = [
        {"user_id": f"u{i}", "channel": "ads", "deliver": {"to": {"email": f"u{i}@example.org"}}}
        for i in range(5)
    ]
    requests.append({"user_id": "no-delivery", "channel": "ads"})
    response = _batch(client, tenant, config_id, requests)
    assert response.status_code == 201, response.get_json()
    decisions = response.get_json()["decisions"]
    assert [d["delivery"]["status"] for d in decisions[:5]] == ["pending"] * 5
    assert "delivery" not in decisions[5]
    assert _count(app, Delivery) == 5 and _count(app, Decision) == 6
    assert app_runtime(app).jobs.run_pending_deliveries() == 5
    session = app_runtime(app).sessions()
    try:
        statuses = set(session.scalars(sa.select(Delivery.status)))
    finally:
        session.close()
    assert statuses == {"sent"}
