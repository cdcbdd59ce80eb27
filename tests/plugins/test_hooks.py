"""One test per hookspec (``test_hook_<name>``): each proves HPE calls the hook where
docs/plugins.md says, with a small @hookimpl class registered for the test."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from hpe_core import hookimpl
from hpe_core.deliver.channels import Connector, HealthStatus, InboundEvent
from hpe_core.deliver.delivery import DeliveryResult
from hpe_core.errors import TransientDeliveryError
from hpe_core.store.models import Decision, Delivery, Outcome
from plugins.manager import connectors
from tests.conftest import BASE
from tests.connectors.conftest import (
    EMAIL_ACTION,
    create_config,
    decide,
    post_webhook,
    webhook_secret,
)
from web.extensions import app_runtime


def _rows(app, model):
    session = app_runtime(app).sessions()
    try:
        return list(session.scalars(sa.select(model)))
    finally:
        session.close()


class Recorder:
    """Records every event hook call."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    @hookimpl
    def hpe_on_decision(self, workspace_id, config_id, channel, user_id, decision):
        self.calls.append(("decision", locals()))

    @hookimpl
    def hpe_on_outcomes(self, workspace_id, config_id, outcomes, source):
        self.calls.append(("outcomes", locals()))

    @hookimpl
    def hpe_on_delivered(self, delivery, result):
        self.calls.append(("delivered", locals()))

    @hookimpl
    def hpe_on_delivery_failed(self, delivery, error, final):
        self.calls.append(("failed", locals()))

    @hookimpl
    def hpe_on_consent_changed(self, workspace_id, channel, user_id, status, source):
        self.calls.append(("consent", locals()))

    def of(self, kind):
        return [args for name, args in self.calls if name == kind]


class Sandbox:
    """Delivers every email by recording it (a plugin overriding a channel's delivery)."""

    def __init__(self, fail_times: int = 0):
        self.sent, self.fail_times = [], fail_times

    @hookimpl
    def hpe_deliver(self, delivery, connector):
        if connector.name != "email":
            return None
        if self.fail_times:
            self.fail_times -= 1
            raise TransientDeliveryError("sandbox hiccup", retry_after=1)
        self.sent.append(delivery)
        return DeliveryResult(status="sent", provider_id=f"sandbox-{len(self.sent)}")


def _deliver(app, client, tenant, config_id):
    response = decide(
        client, tenant, config_id, deliver={"to": {"email": "a@b.example"}, "variables": {}}
    )
    assert response.status_code == 201, response.get_json()
    app_runtime(app).jobs.run_pending_deliveries()
    return response.get_json()


# --- registration ------------------------------------------------------------------------


class Pigeon(Connector):
    name = "pigeon"
    description = "Carrier pigeons"


def test_hook_hpe_register_connectors(kit_app, hpe_pm, register_plugin):
    """A registered connector class becomes a channel; two providers of one name fail."""

    class Plugin:
        @hookimpl
        def hpe_register_connectors(self):
            return [Pigeon]

    app, client, tenant = kit_app(Plugin())
    listed = client.get(f"{BASE}/channels", headers=tenant.headers).get_json()
    assert "pigeon" in [c["name"] for c in listed]
    assert create_config(client, tenant, [{"id": "a"}], channels=("pigeon",))

    class Clash:
        @hookimpl
        def hpe_register_connectors(self):
            return [type("Other", (Connector,), {"name": "pigeon", "description": "x"})]

    register_plugin(Clash())
    with pytest.raises(RuntimeError, match="Two plugins"):
        connectors(hpe_pm)


def test_hook_hpe_register_blueprints(kit_app):
    """Flask blueprints are mounted on the app; flask-smorest ones appear in OpenAPI."""
    from flask import Blueprint
    from flask_smorest import Blueprint as ApiBlueprint

    plain = Blueprint("plain_test", __name__)
    plain.add_url_rule("/plugin-ping", "ping", lambda: {"pong": True})
    documented = ApiBlueprint("documented_test", __name__, url_prefix="/api/v1/plugin-x")

    @documented.route("/hello")
    def hello():
        """Say hello"""
        return {"hello": "world"}

    class Plugin:
        @hookimpl
        def hpe_register_blueprints(self):
            return [plain, documented]

    app, client, _tenant = kit_app(Plugin())
    assert client.get("/plugin-ping").get_json() == {"pong": True}
    assert "/api/v1/plugin-x/hello" in client.get("/api/v1/openapi.json").get_json()["paths"]


def test_hook_hpe_register_commands(hpe_pm, register_plugin):
    """Plugin commands are added to `hpe`; a plugin cannot shadow a core command."""
    from plugins.cli import add_plugin_commands
    from web.cli import cli

    @click.command("hello-plugin")
    def hello():
        click.echo("hello from a plugin")

    @click.command("db")
    def fake_db():
        click.echo("shadowed")

    class Plugin:
        @hookimpl
        def hpe_register_commands(self):
            return [hello, fake_db]

    register_plugin(Plugin())
    group = click.Group(commands=dict(cli.commands))
    added = add_plugin_commands(group, hpe_pm)
    assert "hello-plugin" in added and "db" not in added
    assert {"webhooks", "channels", "consent"} <= set(added)  # HPE's built-in plugin
    result = CliRunner().invoke(group, ["hello-plugin"])
    assert result.output == "hello from a plugin\n"
    assert group.commands["db"] is cli.commands["db"]


def test_hook_hpe_register_attribution_models(kit_app):
    """A registered model becomes a valid attribution.model; built-ins split credit to 1."""
    from plugins.attribution import MODELS, AttributionModel, Touch

    def u_shaped(touches, conversion_at, options):
        return [1.0 / len(touches)] * len(touches)

    class Plugin:
        @hookimpl
        def hpe_register_attribution_models(self):
            return [AttributionModel("u_shaped", "U", u_shaped)]

    app, client, tenant = kit_app(Plugin())
    settings = {"actions": [{"id": "a"}], "attribution": {"model": "u_shaped"}}
    response = client.post(
        f"{BASE}/", json={"name": "x", "settings": settings}, headers=tenant.headers
    )
    assert response.status_code == 201, response.get_json()
    now = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
    touches = [Touch(i, now - dt.timedelta(days=5 - i), "email") for i in range(4)]
    options = {"half_life_hours": 24.0}
    for model in MODELS:
        shares = model.credit(touches, now, options)
        assert len(shares) == 4 and abs(sum(shares) - 1) < 1e-9, model.name
        assert model.credit([], now, options) == []
    bad = {"actions": [{"id": "a"}], "attribution": {"model": "nope"}}
    assert (
        client.post(
            f"{BASE}/", json={"name": "x", "settings": bad}, headers=tenant.headers
        ).status_code
        == 422
    )


# --- decisions -----------------------------------------------------------------------------


def test_hook_hpe_enrich_context(kit_app):
    """Enrichers add context keys (logged with the decision); the caller's keys win."""

    class Plugin:
        @hookimpl
        def hpe_enrich_context(self, connector, user_id, context):
            return {"segment": "vip" if user_id == "u1" else "std", "page": "enriched"}

    app, client, tenant = kit_app(Plugin())
    config_id = create_config(client, tenant, [{"id": "a"}], channels=("web",))
    response = decide(
        client,
        tenant,
        config_id,
        channel="web",
        context={"page": "/home", "user_agent": "Mozilla/5.0 (iPhone; Mobile)"},
    )
    assert response.status_code == 201
    [decision] = _rows(app, Decision)
    assert decision.context["segment"] == "vip"
    assert decision.context["page"] == "/home"
    assert decision.context["device"] == "mobile"  # the web connector's own enrichment


# --- channel hooks -------------------------------------------------------------------------


def test_hook_hpe_deliver(kit_app):
    """A plugin's hpe_deliver answers before the connector (no SMTP server needed)."""
    sandbox = Sandbox()
    app, client, tenant = kit_app(sandbox, PLUGINS={"email": {"smtp_port": 9}})
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    body = _deliver(app, client, tenant, config_id)
    [delivery] = sandbox.sent
    assert str(delivery.decision_id) == body["decision_id"]
    assert delivery.content["subject"].startswith("{{")
    assert delivery.recipient == {"email": "a@b.example"}
    [row] = _rows(app, Delivery)
    assert (row.status, row.result["provider_id"]) == ("sent", "sandbox-1")


def test_hook_hpe_verify_webhook(kit_app):
    """A plugin may verify a provider's own signature instead of HPE's HMAC."""

    class Plugin:
        @hookimpl
        def hpe_verify_webhook(self, request, connector):
            token = request.headers.get("x-provider-token")
            if token is None:
                return None
            return token == "good"

    app, client, tenant = kit_app(Plugin())
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    decision_id = decide(client, tenant, config_id).get_json()["decision_id"]
    url = f"{BASE}/webhooks/email?workspace={tenant.id}"
    body = {"events": [{"type": "open", "decision_id": decision_id}]}
    assert client.post(url, json=body, headers={"X-Provider-Token": "bad"}).status_code == 401
    ok = client.post(url, json=body, headers={"X-Provider-Token": "good"})
    assert ok.status_code == 202 and ok.get_json()["accepted"] == 1
    assert client.post(url, json=body, headers={"X-Provider-Token": "good"}).get_json()["duplicate"]
    assert client.post(url, json=body).status_code == 401  # no token: HPE's HMAC applies


def test_hook_hpe_parse_webhook(kit_app):
    """A plugin parses its own webhook format for a channel."""

    class Plugin:
        @hookimpl
        def hpe_parse_webhook(self, request, connector):
            if connector.name != "web":
                return None
            lines = request.body.decode().split()
            return [
                InboundEvent(type=t, decision_id=uuid.UUID(d))
                for t, d in (line.split(":", 1) for line in lines)
            ]

    app, client, tenant = kit_app(Plugin())
    config_id = create_config(client, tenant, [{"id": "a"}], channels=("web",))
    decision_id = decide(client, tenant, config_id, channel="web").get_json()["decision_id"]
    secret = webhook_secret(app, tenant.id)
    body = f"impression:{decision_id}\nclick:{decision_id}".encode()
    response = post_webhook(client, "web", body, secret, workspace_id=tenant.id)
    assert response.status_code == 202 and response.get_json()["accepted"] == 2


def test_hook_hpe_health_check(kit_app):
    """A plugin's health answer is reported by GET /channels?health=true."""

    class Plugin:
        @hookimpl
        def hpe_health_check(self, connector):
            if connector.name == "ads":
                return HealthStatus(False, "quota exhausted")
            return None

    app, client, tenant = kit_app(Plugin())
    channels = client.get(f"{BASE}/channels?health=true", headers=tenant.headers).get_json()
    health = {c["name"]: c["health"] for c in channels}
    # The plugin's detail is for the operator (hpe channels list --health, the logs).
    assert health["ads"]["ok"] is False and "quota" not in health["ads"]["detail"]
    assert health["web"]["ok"] is True
    assert "health" not in client.get(f"{BASE}/channels", headers=tenant.headers).get_json()[0]


# --- events --------------------------------------------------------------------------------


def test_hook_hpe_on_decision(kit_app):
    """Called once per logged decision, after commit; a failing sink breaks nothing."""
    recorder = Recorder()

    class Broken:
        @hookimpl
        def hpe_on_decision(self):
            raise RuntimeError("sink down")

    app, client, tenant = kit_app(recorder, Broken())
    config_id = create_config(client, tenant, [{"id": "a"}], channels=("web",))
    response = decide(client, tenant, config_id, channel="web")
    assert response.status_code == 201
    [call] = recorder.of("decision")
    assert call["decision"]["decision_id"] == uuid.UUID(response.get_json()["decision_id"])
    assert (call["channel"], call["user_id"], call["workspace_id"]) == ("web", "u1", tenant.id)


def test_hook_hpe_on_outcomes(kit_app):
    """Called with the stored outcomes of a webhook, once (not for a replay)."""
    recorder = Recorder()
    app, client, tenant = kit_app(recorder)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    decision_id = decide(client, tenant, config_id).get_json()["decision_id"]
    secret = webhook_secret(app, tenant.id)
    body = b'{"events": [{"type": "click", "decision_id": "%s"}]}' % decision_id.encode()
    now = int(time.time())
    for _ in range(2):
        post_webhook(client, "email", body, secret, workspace_id=tenant.id, timestamp=now)
    [call] = recorder.of("outcomes")
    assert call["source"] == "webhook" and str(call["config_id"]) == config_id
    assert [o.type for o in call["outcomes"]] == ["click"]


def test_hook_hpe_on_delivered(kit_app):
    """Called after a delivery is sent, with its result."""
    recorder = Recorder()
    app, client, tenant = kit_app(Sandbox(), recorder)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    _deliver(app, client, tenant, config_id)
    [call] = recorder.of("delivered")
    assert call["result"].provider_id == "sandbox-1"


def test_hook_hpe_on_delivery_failed(kit_app):
    """Called for each failed attempt; final=False while it will be retried."""
    recorder = Recorder()
    app, client, tenant = kit_app(Sandbox(fail_times=1), recorder)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    _deliver(app, client, tenant, config_id)
    [call] = recorder.of("failed")
    assert call["final"] is False and call["error"].retry_after == 1
    app_runtime(app).jobs.run_pending_deliveries()
    assert len(recorder.of("delivered")) == 1


def test_hook_hpe_on_consent_changed(kit_app):
    """Called when an unsubscribe webhook withdraws consent (once, not on a repeat)."""
    recorder = Recorder()
    app, client, tenant = kit_app(recorder)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    decision_id = decide(client, tenant, config_id).get_json()["decision_id"]
    secret = webhook_secret(app, tenant.id)
    events = [{"event": "unsubscribe", "decision_id": decision_id, "sg_event_id": "x"}]
    post_webhook(client, "email", events, secret, workspace_id=tenant.id)
    events[0]["event"] = "spamreport"
    post_webhook(client, "email", events, secret, workspace_id=tenant.id)
    [call] = recorder.of("consent")
    assert (call["channel"], call["user_id"], call["status"]) == ("email", "u1", "unsubscribed")
    assert _rows(app, Outcome)
