"""POST /webhooks/{channel}: HMAC signatures, replay dedupe, the SendGrid adapter, and
consent that stops email decisions."""

from __future__ import annotations

import json
import time

import sqlalchemy as sa

from hpe_core.store.models import Consent, Outcome, WebhookReceipt
from tests.api.conftest import assert_error
from tests.connectors.conftest import (
    EMAIL_ACTION,
    channel_app,
    create_config,
    decide,
    new_tenant,
    post_webhook,
    webhook_secret,
)
from web.extensions import app_runtime


def _count(app, model, *where) -> int:
    session = app_runtime(app).sessions()
    try:
        return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))
    finally:
        session.close()


def _setup(app):
    client = app.test_client()
    tenant = new_tenant(app)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    decision = decide(client, tenant, config_id).get_json()
    return client, tenant, config_id, decision["decision_id"]


def test_signed_webhook_stores_outcomes_once(app):
    """A signed generic webhook stores its outcomes; the same request replayed stores nothing."""
    client, _tenant, _config, decision_id = _setup(app)
    secret = webhook_secret(app)
    body = {"events": [{"type": "conversion", "decision_id": decision_id, "value": 42.5}]}
    raw = json.dumps(body).encode()
    timestamp = int(time.time())
    first = post_webhook(client, "email", raw, secret, timestamp=timestamp)
    assert first.status_code == 202, first.get_json()
    assert first.get_json() == {"accepted": 1, "duplicate": False, "ignored": []}
    replay = post_webhook(client, "email", raw, secret, timestamp=timestamp)
    assert replay.status_code == 200
    assert replay.get_json()["duplicate"] is True
    [value] = [o.value for o in _rows(app, Outcome)]
    assert value == 42.5
    assert _count(app, WebhookReceipt) == 1


def _rows(app, model):
    session = app_runtime(app).sessions()
    try:
        return list(session.scalars(sa.select(model)))
    finally:
        session.close()


def test_bad_signatures_are_401_and_store_nothing(sqlite_app):
    """Wrong secret, altered body, stale or missing signature, unknown workspace: 401."""
    app = sqlite_app
    client, _tenant, _config, decision_id = _setup(app)
    secret = webhook_secret(app)
    body = json.dumps({"events": [{"type": "click", "decision_id": decision_id}]}).encode()
    now = int(time.time())
    cases = [
        post_webhook(client, "email", body, "whsec_wrong"),
        post_webhook(client, "email", body, secret, timestamp=now - 301),
        post_webhook(client, "email", body, secret, timestamp=now + 301),
        post_webhook(client, "email", body, secret, workspace_id="other"),
        post_webhook(client, "email", body, secret, **{"X-HPE-Signature": "t=1"}),
        post_webhook(client, "email", body, secret, **{"X-HPE-Signature": ""}),
        post_webhook(client, "nope", body, "whsec_wrong"),  # unknown channel: 401 first
    ]
    signature = post_webhook(client, "email", body, secret).request.headers["X-HPE-Signature"]
    cases.append(
        client.post(
            "/api/v1/041-hyper-personalization-engine/webhooks/email",
            data=body + b" ",
            headers={"X-HPE-Workspace": "acme", "X-HPE-Signature": signature},
        )
    )
    for response in cases:
        assert_error(response, 401)
    assert _count(app, Outcome) == 1  # only the one good request
    assert _count(app, WebhookReceipt) == 1


def test_rotated_secret_keeps_the_old_one_for_a_grace_period(sqlite_app):
    """After rotation both secrets verify; with no grace the old one stops at once."""
    import datetime as dt

    from hpe_core.deliver import webhooks

    app = sqlite_app
    client, _tenant, _config, decision_id = _setup(app)
    old = webhook_secret(app)
    new = webhook_secret(app)
    body = {"events": [{"type": "open", "decision_id": decision_id}]}
    assert post_webhook(client, "email", body, old).status_code == 202
    body["events"][0]["type"] = "click"
    assert post_webhook(client, "email", body, new).status_code == 202
    session = app_runtime(app).sessions()
    _row, newest = webhooks.create_secret(
        session, "acme", app.config["SECRET_KEY"], grace=dt.timedelta(0)
    )
    session.commit()
    session.close()
    body["events"][0]["type"] = "conversion"
    assert post_webhook(client, "email", body, new).status_code == 401
    assert post_webhook(client, "email", body, newest).status_code == 202


def test_unknown_channel_with_a_good_signature_is_404(sqlite_app):
    """A verified request for a channel no plugin provides is a 404."""
    app = sqlite_app
    client = app.test_client()
    new_tenant(app)
    secret = webhook_secret(app)
    assert_error(post_webhook(client, "pigeon", {"events": []}, secret), 404)


def test_unreadable_body_is_a_422_and_stores_nothing(sqlite_app):
    """A verified but malformed body is rejected whole, receipt included."""
    app = sqlite_app
    client = app.test_client()
    new_tenant(app)
    secret = webhook_secret(app)
    assert_error(post_webhook(client, "email", b"{not json", secret), 422)
    assert_error(post_webhook(client, "email", {"events": [{"kind": "x"}]}, secret), 422)
    assert _count(app, WebhookReceipt) == 0


def test_sendgrid_events_become_outcomes_and_consent(app):
    """A SendGrid event array: opens/clicks become outcomes, unsubscribe withdraws consent."""
    client, tenant, config_id, decision_id = _setup(app)
    secret = webhook_secret(app)
    now = int(time.time())
    events = [
        {"event": "processed", "decision_id": decision_id, "timestamp": now},
        {"event": "delivered", "decision_id": decision_id, "timestamp": now, "sg_event_id": "e1"},
        {"event": "open", "decision_id": decision_id, "timestamp": now, "sg_event_id": "e2"},
        {"event": "open", "decision_id": decision_id, "timestamp": now, "sg_event_id": "e3"},
        {"event": "click", "decision_id": decision_id, "url": "https://x", "timestamp": now},
        {"event": "unsubscribe", "decision_id": decision_id, "timestamp": now},
        {"event": "open", "decision_id": "not-a-uuid", "timestamp": now},
        {"event": "open", "decision_id": "1c4a1c0e-0000-4000-8000-000000000000"},
    ]
    response = post_webhook(client, "email", events, secret)
    assert response.status_code == 202, response.get_json()
    result = response.get_json()
    assert result["accepted"] == 5
    assert [i["reason"] for i in result["ignored"]] == [
        "needs a decision_id, or a config_id and user_id",
        "unknown decision",
    ]
    types = sorted(o.type for o in _rows(app, Outcome))
    assert types == ["click", "delivered", "open", "unsubscribe"]  # two opens count once
    [consent] = _rows(app, Consent)
    assert (consent.status, consent.source) == ("unsubscribed", "webhook:email")
    blocked = decide(client, tenant, config_id)
    assert blocked.status_code == 200 and blocked.get_json()["reason"] == "no_consent"
    # Consent is per channel: the user can still get web decisions.
    assert _count(app, Consent, Consent.channel == "web") == 0


def test_bounces_withdraw_consent_but_blocked_bounces_do_not(sqlite_app):
    """A hard bounce stops email to the user; a 'blocked' (temporary) bounce does not."""
    app = sqlite_app
    client, tenant, config_id, decision_id = _setup(app)
    other = decide(client, tenant, config_id, user_id="u2").get_json()["decision_id"]
    secret = webhook_secret(app)
    events = [
        {"event": "bounce", "type": "bounce", "decision_id": decision_id},
        {"event": "bounce", "type": "blocked", "decision_id": other},
    ]
    assert post_webhook(client, "email", events, secret).status_code == 202
    assert decide(client, tenant, config_id).get_json()["reason"] == "no_consent"
    assert decide(client, tenant, config_id, user_id="u2").status_code == 201


def test_another_workspaces_decision_is_ignored(sqlite_app):
    """A workspace's webhook cannot write outcomes to another workspace's decisions."""
    app = sqlite_app
    client, _tenant, _config, decision_id = _setup(app)
    new_tenant(app, "rival")
    secret = webhook_secret(app, "rival")
    body = {"events": [{"type": "conversion", "decision_id": decision_id}]}
    response = post_webhook(client, "email", body, secret, workspace_id="rival")
    assert response.status_code == 202
    assert response.get_json()["ignored"][0]["reason"] == "unknown decision"
    assert _count(app, Outcome) == 0


def test_ads_conversion_postback_by_user_and_config(sqlite_url, tmp_path):
    """An ad platform's postback without a decision id attributes by config and user."""
    app = channel_app(sqlite_url, tmp_path)
    client = app.test_client()
    tenant = new_tenant(app)
    config_id = create_config(client, tenant, [{"id": "a"}], channels=("ads",))
    secret = webhook_secret(app)
    body = {
        "events": [
            {
                "type": "conversion",
                "config_id": config_id,
                "user_id": "u9",
                "value": 10,
                "event_id": "order-1",
            },
            {
                "type": "conversion",
                "config_id": config_id,
                "user_id": "u9",
                "value": 10,
                "event_id": "order-1",
            },
        ]
    }
    response = post_webhook(client, "ads", body, secret)
    assert response.status_code == 202, response.get_json()
    [outcome] = _rows(app, Outcome)
    assert (outcome.user_id, outcome.value, outcome.idempotency_key) == ("u9", 10, "k:ads:order-1")
    app_runtime(app).engine.dispose()


def test_old_receipts_are_purged(sqlite_app):
    """Receipts older than twice the tolerance are deleted by later requests."""
    import datetime as dt

    from hpe_core.deliver import webhooks

    app = sqlite_app
    client, _tenant, _config, decision_id = _setup(app)
    secret = webhook_secret(app)
    body = {"events": [{"type": "open", "decision_id": decision_id}]}
    assert post_webhook(client, "email", body, secret).status_code == 202
    session = app_runtime(app).sessions()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=11)
    assert webhooks.purge_receipts(session, workspace_id="acme", older_than=later) == 1
    session.commit()
    session.close()
    assert _count(app, WebhookReceipt) == 0
