"""Events out end to end: HPE's events posted to a real local HTTP receiver, signed the
Standard Webhooks way and verified there with independent code (the ``standardwebhooks``
package and a verifier written from the specification); batching, retries with their
log, the endpoint disabled after a day of failures, and RQ on real Redis.

The receivers listen on 127.0.0.1, which the outbound policy refuses by default: these
apps allow it, as an operator allows an internal network (``OUTBOUND_ALLOWED_NETWORKS``;
what the policy refuses is in test_webhooks_outbound_policy.py)."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook

from hpe_core.deliver.outbound import OutboundPolicy
from hpe_core.integrations import webhook_messages
from hpe_core.store.models import Activity, WebhookEndpoint, WebhookMessage
from plugins.event_sinks import sink_of
from tests.conftest import BASE, create_tenant, make_test_app
from tests.integrations.conftest import (
    ENDPOINTS,
    LOOPBACK,
    TEST_KEY,
    create_config,
    create_endpoint,
    decide,
    run_jobs,
)
from tests.receivers import receiving, verify_from_spec
from web.extensions import app_runtime


@pytest.fixture
def app(database_url, tmp_path):
    """The usual app (tests/conftest.py), allowed to post to the loopback receivers."""
    app = make_test_app(database_url, tmp_path, OUTBOUND_ALLOWED_NETWORKS=LOOPBACK)
    yield app
    app_runtime(app).engine.dispose()


def _payload(received) -> dict:
    return json.loads(received.body)


def test_decisions_arrive_batched_and_signed(app, client, tenant, web_settings):
    """Three decisions make one decision.created message; both verifiers accept it."""
    with receiving() as receiver:
        endpoint = create_endpoint(client, tenant, receiver.url, ["decision.created"])
        config_id = create_config(client, tenant, web_settings)
        decided = [decide(client, tenant, config_id, user_id=f"u{i}") for i in range(3)]
        assert run_jobs(app) == 1
        [received] = receiver.requests
    payload = Webhook(endpoint["secret"]).verify(received.body, received.headers)
    assert verify_from_spec(endpoint["secret"], received.headers, received.body)
    assert payload["type"] == "decision.created"
    assert received.headers["webhook-id"].startswith("msg_")
    assert received.headers["content-type"] == "application/json"
    decisions = payload["data"]["decisions"]
    assert [d["decision_id"] for d in decisions] == [d["decision_id"] for d in decided]
    first = decisions[0]
    assert first["config_id"] == config_id and first["channel"] == "web"
    assert first["variant"] in ("treatment", "holdout")
    assert 0 < first["probability"] <= 1 and first["ranking"]
    attempts = client.get(f"{ENDPOINTS}/{endpoint['id']}/attempts", headers=tenant.headers)
    [attempt] = attempts.get_json()
    assert attempt["status_code"] == 200 and attempt["attempt"] == 1
    assert attempt["message_id"] == received.headers["webhook-id"]
    assert attempt["response"] == "answered 200"


def test_a_wrong_secret_does_not_verify(app, client, tenant, web_settings):
    """The independent verifiers reject the signature under another secret."""
    with receiving() as receiver:
        create_endpoint(client, tenant, receiver.url, ["decision.created"])
        config_id = create_config(client, tenant, web_settings)
        decide(client, tenant, config_id)
        run_jobs(app)
        [received] = receiver.requests
    other = "whsec_" + "A" * 43 + "="
    assert not verify_from_spec(other, received.headers, received.body)
    with pytest.raises(Exception, match="signature"):
        Webhook(other).verify(received.body, received.headers)


def test_config_and_outcome_events(app, client, tenant, web_settings):
    """config.updated (from the activity log) and outcome.received reach a subscriber."""
    with receiving() as receiver:
        endpoint = create_endpoint(client, tenant, receiver.url, ["config.*", "outcome.received"])
        config_id = create_config(client, tenant, web_settings)
        client.patch(f"{BASE}/{config_id}", json={"name": "Summer"}, headers=tenant.headers)
        decision = decide(client, tenant, config_id)
        response = client.post(
            f"{BASE}/{config_id}/outcomes",
            json={"decision_id": decision["decision_id"], "type": "click"},
            headers=tenant.headers,
        )
        assert response.status_code == 202
        run_jobs(app)
        payloads = [
            Webhook(endpoint["secret"]).verify(r.body, r.headers) for r in receiver.requests
        ]
    by_type = {payload["type"]: payload["data"] for payload in payloads}
    assert set(by_type) == {"config.created", "config.updated", "outcome.received"}
    assert by_type["config.updated"]["changes"] == {"name": ["Spring", "Summer"]}
    assert by_type["config.updated"]["config_id"] == config_id
    [outcome] = by_type["outcome.received"]["outcomes"]
    assert outcome["type"] == "click" and outcome["decision_id"] == decision["decision_id"]


def test_nothing_is_sent_to_those_not_subscribed(app, client, tenant, make_tenant, web_settings):
    """No message for an unsubscribed type, a disabled endpoint, or another workspace."""
    other = make_tenant("other")
    with receiving() as receiver:
        create_endpoint(client, tenant, receiver.url, ["model.updated"])
        disabled = create_endpoint(client, tenant, receiver.url, ["*"])
        client.patch(
            f"{ENDPOINTS}/{disabled['id']}", json={"enabled": False}, headers=tenant.headers
        )
        create_endpoint(client, other, receiver.url, ["*"])
        config_id = create_config(client, tenant, web_settings)
        decide(client, tenant, config_id)
        assert run_jobs(app) == 0
        assert receiver.requests == []


def test_failed_attempts_are_retried_with_a_log(app, client, tenant, web_settings):
    """500, then 503, then 200: three attempts, one webhook-id, each in the attempt log."""
    with receiving([500, 503, 200]) as receiver:
        endpoint = create_endpoint(client, tenant, receiver.url, ["decision.created"])
        config_id = create_config(client, tenant, web_settings)
        decide(client, tenant, config_id)
        assert run_jobs(app) == 1  # fails: queued again after its delay
        assert run_jobs(app) == 1
        assert run_jobs(app) == 1
        assert run_jobs(app) == 0  # delivered: nothing left
        requests = list(receiver.requests)
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    for received in requests:
        Webhook(endpoint["secret"]).verify(received.body, received.headers)
    attempts = client.get(
        f"{ENDPOINTS}/{endpoint['id']}/attempts", headers=tenant.headers
    ).get_json()
    assert [(a["attempt"], a["status_code"]) for a in attempts] == [(3, 200), (2, 503), (1, 500)]
    fetched = client.get(f"{ENDPOINTS}/{endpoint['id']}", headers=tenant.headers).get_json()
    assert fetched["failing_since"] is None and fetched["status"] == "enabled"


def test_a_closed_port_is_a_failed_attempt(app, client, tenant, web_settings):
    """No answer at all: the attempt log says why, and the message waits for a retry."""
    with receiving() as receiver:
        url = receiver.url
    endpoint = create_endpoint(client, tenant, url, ["decision.created"])
    config_id = create_config(client, tenant, web_settings)
    decide(client, tenant, config_id)
    run_jobs(app)
    [attempt] = client.get(
        f"{ENDPOINTS}/{endpoint['id']}/attempts", headers=tenant.headers
    ).get_json()
    assert attempt["status_code"] is None and "refused" in attempt["error"].lower()


def test_an_endpoint_failing_for_a_day_is_disabled(app, client, tenant, session):
    """Failures since a day ago: the next failure disables it, with an activity."""
    with receiving([500]) as receiver:
        endpoint = create_endpoint(client, tenant, receiver.url, ["model.updated"])
        endpoint_id = uuid.UUID(endpoint["id"])
        ids = webhook_messages.publish(session, tenant.id, "model.updated", {"version": 2})
        session.commit()
        start = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
        report = webhook_messages.attempt(
            session,
            ids[0],
            secret_key="dev",
            max_attempts=8,
            policy=OutboundPolicy.of(LOOPBACK),
            now=lambda: start,
        )
        assert report.outcome == "retry"
        later = start + dt.timedelta(hours=23)
        report = webhook_messages.attempt(
            session,
            ids[0],
            secret_key="dev",
            max_attempts=8,
            policy=OutboundPolicy.of(LOOPBACK),
            now=lambda: later,
        )
        assert report.outcome == "retry"
        day_later = start + dt.timedelta(days=1, seconds=1)
        report = webhook_messages.attempt(
            session,
            ids[0],
            secret_key="dev",
            max_attempts=8,
            policy=OutboundPolicy.of(LOOPBACK),
            now=lambda: day_later,
        )
        assert report.outcome == "failed"
    row = session.get(WebhookEndpoint, endpoint_id, populate_existing=True)
    assert row.status == "disabled" and "2026-05-01 12:00" in row.disabled_reason
    [activity] = session.scalars(
        sa.select(Activity).where(Activity.type == "webhook_endpoint.disabled")
    ).all()
    assert activity.workspace_id == tenant.id and activity.data["endpoint_id"] == endpoint["id"]
    assert session.get(WebhookMessage, ids[0]).status == "failed"
    assert webhook_messages.publish(session, tenant.id, "model.updated", {}) == []


def test_decision_batches_are_capped(sqlite_url, tmp_path, web_settings):
    """WEBHOOK_BATCH_SIZE decisions a message at most."""
    # The sink's thread must not flush on its own clock in between: on a loaded machine
    # the five decisions can take longer than the default second.
    app = make_test_app(
        sqlite_url,
        tmp_path,
        WEBHOOK_BATCH_SIZE=2,
        WEBHOOK_BATCH_SECONDS=3600,
        OUTBOUND_ALLOWED_NETWORKS=LOOPBACK,
    )
    try:
        client = app.test_client()
        tenant = create_tenant(app, "acme")
        with receiving() as receiver:
            create_endpoint(client, tenant, receiver.url, ["decision.*"])
            config_id = create_config(client, tenant, web_settings)
            for user in range(5):
                decide(client, tenant, config_id, user_id=f"u{user}")
            # The sink's thread flushes a full batch on its own: what it enqueues while
            # run_jobs drains the queue runs on the next call.
            ran, deadline = run_jobs(app), time.monotonic() + 10
            while len(receiver.requests) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
                ran += run_jobs(app)
            assert ran == 3
            sizes = sorted(len(_payload(r)["data"]["decisions"]) for r in receiver.requests)
        assert sizes == [1, 2, 2]
    finally:
        app_runtime(app).engine.dispose()


@pytest.mark.redis
def test_messages_go_through_rq_with_retries(sqlite_url, tmp_path, redis_url, monkeypatch):
    """On RQ (real Redis, rq's SimpleWorker): a failed attempt enqueues the next; the
    retry delivers."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from worker import retry
    from worker.runtime import bind

    monkeypatch.setattr(retry, "WEBHOOK_INTERVALS", [0])  # retry at once: no scheduler here
    app = make_test_app(
        sqlite_url,
        tmp_path,
        REDIS_URL=redis_url,
        SECRET_KEY=TEST_KEY,
        OUTBOUND_ALLOWED_NETWORKS=LOOPBACK,
    )
    runtime = app_runtime(app)
    try:
        bind(runtime)
        client = app.test_client()
        tenant = create_tenant(app, "acme")
        with receiving([502, 200]) as receiver:
            endpoint = create_endpoint(client, tenant, receiver.url, ["decision.created"])
            config_id = create_config(client, tenant, {"actions": [{"id": "a"}, {"id": "b"}]})
            decide(client, tenant, config_id)
            assert sink_of(runtime).flush() == 1
            worker = SimpleWorker(
                [runtime.jobs.delivery_queue],
                connection=runtime.jobs.redis,
                serializer=JSONSerializer,
            )
            assert worker.work(burst=True) is True
            statuses = [
                a["status_code"]
                for a in client.get(
                    f"{ENDPOINTS}/{endpoint['id']}/attempts", headers=tenant.headers
                ).get_json()
            ]
            assert len(receiver.requests) == 2
        assert statuses == [200, 502]
    finally:
        bind(None)
        runtime.jobs.redis.close()
        runtime.engine.dispose()
