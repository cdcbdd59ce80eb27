"""GET /{id}/decisions/connected: a decision fetched at send time with a publishable key,
logged like any other, idempotent per user and send, never cached; on SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
import uuid

import sqlalchemy as sa

from hpe_core.store.models import Decision
from tests.api.conftest import assert_error
from tests.conftest import BASE
from tests.integrations.conftest import create_config
from web.extensions import app_runtime

SETTINGS = {
    "channels": ["email"],
    "actions": [
        {"id": "running-shoes", "content": {"email": {"subject": "20% off shoes", "text": "Run!"}}},
        {"id": "new-arrivals", "content": {"email": {"subject": "Just in", "text": "New."}}},
    ],
}


def _config(client, tenant) -> str:
    """A configuration on email whose publishable keys may decide on email too (where HPE
    limits publishable keys to the channels in ``publishable_keys.channels``)."""
    config_id = create_config(client, tenant, SETTINGS)
    client.patch(
        f"{BASE}/{config_id}",
        json={"settings": {"publishable_keys": {"channels": ["email"]}}},
        headers=tenant.headers,
    )  # a 422 where the setting does not exist: publishable keys decide anywhere there
    return config_id


def _decisions(app) -> list[Decision]:
    session = app_runtime(app).sessions()
    try:
        return list(session.scalars(sa.select(Decision)))
    finally:
        session.close()


def _fetch(client, config_id, headers=None, **params):
    return client.get(
        f"{BASE}/{config_id}/decisions/connected",
        query_string={"user_id": "u1", "channel": "email", **params},
        headers=headers or {},
    )


def test_a_fetch_logs_a_decision_with_its_content(app, client, tenant, make_tenant):
    """Publishable key: 200, the decision and its email content, no-cache headers, logged."""
    config_id = _config(client, tenant)
    publishable = make_tenant(tenant.id, kind="publishable")
    response = _fetch(
        client,
        config_id,
        publishable.headers,
        **{"ctx.age": "42", "ctx.score": "0.5", "ctx.vip": "true", "ctx.segment": "runners"},
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["action_id"] in ("running-shoes", "new-arrivals") and body["replayed"] is False
    subjects = {"running-shoes": "20% off shoes", "new-arrivals": "Just in"}
    assert body["content"]["subject"] == subjects[body["action_id"]]
    assert body["variant"] in ("treatment", "holdout") and body["ranking"]
    assert response.headers["Cache-Control"].startswith("no-store")
    assert response.headers["Pragma"] == "no-cache" and response.headers["Expires"] == "0"
    [logged] = _decisions(app)
    assert str(logged.id) == body["decision_id"] and logged.channel == "email"
    assert logged.context == {"age": 42, "score": 0.5, "vip": True, "segment": "runners"}


def test_one_decision_per_user_and_send(app, client, tenant):
    """The same send answers the same decision (replayed); another send or user, a new one."""
    config_id = _config(client, tenant)
    first = _fetch(client, config_id, tenant.headers, send_id="campaign-7:dispatch-1").get_json()
    again = _fetch(client, config_id, tenant.headers, send_id="campaign-7:dispatch-1").get_json()
    assert again["decision_id"] == first["decision_id"] and again["replayed"] is True
    assert {k: again[k] for k in ("action_id", "probability", "variant", "content")} == {
        k: first[k] for k in ("action_id", "probability", "variant", "content")
    }
    other_send = _fetch(client, config_id, tenant.headers, send_id="campaign-7:dispatch-2")
    other_user = _fetch(
        client, config_id, tenant.headers, send_id="campaign-7:dispatch-1", user_id="u2"
    )
    no_send = _fetch(client, config_id, tenant.headers)
    ids = {
        first["decision_id"],
        other_send.get_json()["decision_id"],
        other_user.get_json()["decision_id"],
        no_send.get_json()["decision_id"],
    }
    assert len(ids) == 4 and len(_decisions(app)) == 4


def test_concurrent_fetches_of_one_send_log_one_decision(app, client, tenant):
    """Eight simultaneous fetches of one send (a tool rendering parts in parallel): one row."""
    config_id = _config(client, tenant)
    answers, barrier = [], threading.Barrier(8)

    def fetch():
        local = app.test_client()
        barrier.wait()
        answers.append(_fetch(local, config_id, tenant.headers, send_id="s-1"))

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [r.status_code for r in answers] == [200] * 8
    assert len({r.get_json()["decision_id"] for r in answers}) == 1
    assert len(_decisions(app)) == 1


def test_key_in_the_query_and_refusals(app, client, tenant, make_tenant, session):
    """?key= for tools without headers; no key 401; bad ctx 422; paused 409; another
    workspace's send 404."""
    config_id = _config(client, tenant)
    publishable = make_tenant(tenant.id, kind="publishable")
    assert _fetch(client, config_id, key=publishable.key).status_code == 200
    assert_error(_fetch(client, config_id), 401)
    assert_error(_fetch(client, config_id, tenant.headers, **{"ctx.bad key": "x"}), 422)
    assert_error(_fetch(client, config_id, tenant.headers, **{"ctx.long": "x" * 501}), 422)
    assert_error(_fetch(client, config_id, tenant.headers, user_id=""), 422)
    other = make_tenant("other")
    assert_error(_fetch(client, config_id, other.headers, send_id="s"), 404)
    client.patch(f"{BASE}/{config_id}", json={"status": "PAUSED"}, headers=tenant.headers)
    assert_error(_fetch(client, config_id, tenant.headers), 409)
    assert_error(_fetch(client, uuid.uuid4(), tenant.headers), 404)


def test_nothing_eligible_answers_a_reason(client, tenant, session):
    """A user who unsubscribed: 200 with action_id null, the reason and no content."""
    from hpe_core.decide import consent

    config_id = _config(client, tenant)
    consent.set_status(
        session,
        workspace_id=tenant.id,
        channel="email",
        user_id="u1",
        status="unsubscribed",
        source="test",
    )
    session.commit()
    response = _fetch(client, config_id, tenant.headers, send_id="s-9")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["action_id"] is None and body["reason"] == "no_consent"
    assert body["content"] == {} and body["replayed"] is False
    assert response.headers["Cache-Control"].startswith("no-store")
