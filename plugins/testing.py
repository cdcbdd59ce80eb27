"""HPE's pytest plugin for connector authors, installed with HPE (``pytest11`` entry
point ``hpe``): nothing to import, the fixtures are just there.

- ``hpe_pm``: a fresh plugin manager with only HPE's built-ins (no installed plugin);
- ``register_plugin(plugin, name=None)``: register on ``hpe_pm`` for this test only;
- ``make_hpe_app(**config)`` / ``hpe_app``: an app (fresh SQLite, jobs inline) built on
  ``hpe_pm``, so it sees exactly the plugins registered so far;
- ``hpe_tenant``: a workspace with a secret key on ``hpe_app`` (``.headers``);
- ``ConnectorContract``: subclass it as ``TestMyConnector`` and set ``connector_class``.

Kept import-light: HPE's app is imported inside fixtures.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from typing import ClassVar

import pytest

from hpe_core.deliver.channels import (
    ChannelRuntime,
    Connector,
    HealthStatus,
    InboundEvent,
    WebhookRequest,
)
from hpe_core.deliver.delivery import Delivery, DeliveryResult, TrackingLinks
from hpe_core.errors import PermanentDeliveryError, TransientDeliveryError
from plugins.app_runtime import app_runtime

BASE = "/api/v1/041-hyper-personalization-engine"


@pytest.fixture
def hpe_pm():
    """A fresh plugin manager: HPE's hookspecs and built-ins, no installed plugin."""
    from plugins.manager import make_plugin_manager

    return make_plugin_manager(load=[])


@pytest.fixture
def register_plugin(hpe_pm):
    """``register_plugin(plugin, name=None)``: register a plugin (a module, class or
    object with ``@hookimpl`` methods) on ``hpe_pm``; unregistered after the test."""
    registered = []

    def register(plugin, name: str | None = None):
        registered.append(hpe_pm.register(plugin, name=name))
        hpe_pm.check_pending()
        return plugin

    try:
        yield register
    finally:
        for name in reversed(registered):
            if name is not None and hpe_pm.get_plugin(name) is not None:
                hpe_pm.unregister(name=name)


@pytest.fixture
def make_hpe_app(hpe_pm, tmp_path):
    """``make_hpe_app(**config)``: an app on a fresh SQLite file, built on ``hpe_pm``."""
    apps = []

    def make(**config):
        from web import create_app

        settings = {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / f'hpe-{len(apps)}.db'}",
            "PLUGIN_MANAGER": hpe_pm,
            "REDIS_URL": None,
            "INLINE_SWEEPER": False,
            "KEY_CACHE_SECONDS": 0,
            "PUBLIC_URL": "http://hpe.test",
            # A fresh strong key: HPE refuses short or published ones.
            "SECRET_KEY": "kit-" + secrets.token_urlsafe(32),
        }
        settings.update(config)
        app = create_app(settings)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app_runtime(app).engine.dispose()


@pytest.fixture
def hpe_app(make_hpe_app):
    """An app built on ``hpe_pm`` (register plugins before asking for it)."""
    return make_hpe_app()


class Tenant:
    """A workspace on a kit app: ``id``, its secret API ``key`` and the ``headers`` that
    send it, and its inbound ``webhook_secret`` (``whsec_...``)."""

    def __init__(self, workspace_id: str, key: str, webhook_secret: str | None = None):
        self.id, self.key = workspace_id, key
        self.headers = {"Authorization": f"Bearer {key}"}
        self.webhook_secret = webhook_secret

    def signed(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The headers of ``POST /webhooks/{channel}`` for ``body``: the workspace and
        HPE's signature with the workspace's webhook secret."""
        from hpe_core.deliver import webhooks

        stamp = int(time.time()) if timestamp is None else timestamp
        return {
            "X-HPE-Workspace": self.id,
            "X-HPE-Signature": webhooks.sign(self.webhook_secret, body, stamp),
            "Content-Type": "application/json",
        }


def make_tenant(app) -> Tenant:
    """A new workspace on ``app`` with a secret API key and a webhook signing secret."""
    from hpe_core.deliver import webhooks
    from hpe_core.tenancy import workspaces

    session = app_runtime(app).sessions()
    try:
        workspace_id = f"kit-{uuid.uuid4().hex[:8]}"
        workspaces.create_workspace(session, workspace_id)
        _row, key = workspaces.create_key(session, workspace_id)
        _secret_row, secret = webhooks.create_secret(
            session, workspace_id, app.config["SECRET_KEY"]
        )
        session.commit()
    finally:
        session.close()
    return Tenant(workspace_id, key, secret)


@pytest.fixture
def hpe_tenant(hpe_app):
    """A workspace with a secret API key and a webhook signing secret on ``hpe_app``."""
    return make_tenant(hpe_app)


def run_deliveries(app, rounds: int = 1) -> int:
    """Run the kit app's queued deliveries now (jobs are inline and wait to be run), as a
    worker would; a transient failure is queued again for the next round.

    :returns: how many attempts ran
    """
    jobs = app_runtime(app).jobs
    return sum(jobs.run_pending_deliveries() for _ in range(rounds))


def make_delivery(channel: str, **overrides) -> Delivery:
    """A sample :class:`Delivery` for ``channel`` (override any field)."""
    values = {
        "id": uuid.uuid4(),
        "decision_id": uuid.uuid4(),
        "workspace_id": "kit",
        "config_id": uuid.uuid4(),
        "channel": channel,
        "user_id": "user-1",
        "action_id": "offer-1",
        "action": {"id": "offer-1", "features": {}, "content": {}},
        "content": {},
        "recipient": {},
        "variables": {},
        "context": {},
        "attempt": 1,
    }
    values.update(overrides)
    return Delivery(**values)


class ConnectorContract:
    """The contract every connector keeps. Subclass it in your tests::

        class TestSmsConnector(ConnectorContract):
            connector_class = SmsConnector
            plugin = hpe_sms            # the module with your @hookimpl functions
            plugin_config = {"gateway_url": "http://127.0.0.1:9"}
            content = {"text": "Hi {{ first_name }}"}
            recipient = {"phone": "+15550100"}
            unhealthy_config = {"gateway_url": "http://127.0.0.1:9"}  # nothing listens

            def working_config(self, request): ...   # optional, see below

    The contract checks the class and its schemas, ``send()`` alone (a result, the
    transient/permanent error mapping), ``health()`` (it must be able to say *not ok*),
    ``parse_webhook()``, and then the connector inside HPE, end to end on a kit app: a
    decision asked with ``deliver`` is sent through HPE's own delivery job
    (``hpe_deliver``: status ``sent`` after one attempt), and the provider's callback for
    it, posted signed to ``POST /webhooks/<channel>``, becomes an outcome of that
    decision. So a connector whose webhook parser returns nothing, or whose health
    always says ok, fails.

    Override to fit your connector (each is documented where it is defined):
    ``working_config`` (settings under which sending works, e.g. a local server's URL),
    ``working_connector``, ``transient_case`` / ``transient_config``, ``permanent_case``
    / ``permanent_recipient``, ``unhealthy_case`` / ``unhealthy_config`` (or set
    ``health_checks_nothing = True`` for a channel with nothing to check),
    ``webhook_body`` (your provider's callback for a decision: it must carry back the
    ``decision_id`` you sent), ``webhook_headers`` (your provider's signature, checked by
    your ``hpe_verify_webhook``) and ``runtime``. A case left as None is skipped with a
    message saying what to set, except health, which fails.
    """

    connector_class: ClassVar[type[Connector]]
    #: The plugin (module or object) whose hpe_register_connectors returns the class;
    #: None registers a small shim that returns ``connector_class``.
    plugin: ClassVar[object | None] = None
    plugin_config: ClassVar[dict] = {}
    content: ClassVar[dict] = {}
    recipient: ClassVar[dict] = {}
    variables: ClassVar[dict] = {}
    #: Plugin settings under which send() must fail transiently (e.g. a closed port).
    transient_config: ClassVar[dict | None] = None
    #: A recipient send() must refuse for good (e.g. no address).
    permanent_recipient: ClassVar[dict | None] = None
    #: Plugin settings under which health() must say not ok (e.g. the gateway is down).
    unhealthy_config: ClassVar[dict | None] = None
    #: True for a channel whose health has nothing to check (it depends on nothing).
    health_checks_nothing: ClassVar[bool] = False

    # --- what a subclass may override ---------------------------------------------------

    def runtime(self) -> ChannelRuntime:
        """The :class:`ChannelRuntime` connectors get (tracking links on http://hpe.test)."""
        return ChannelRuntime(
            links=TrackingLinks("hpe-test-kit", "http://hpe.test"), public_url="http://hpe.test"
        )

    def make_connector(self, config: dict | None = None) -> Connector:
        """A connector on ``config`` (default ``plugin_config``), validated by its schema."""
        cls = self.connector_class
        return cls(
            cls.validate_plugin_config(self.plugin_config if config is None else config),
            self.runtime(),
        )

    def delivery(self, **overrides) -> Delivery:
        """A sample :class:`Delivery` of ``content`` to ``recipient`` with ``variables``."""
        content = self.connector_class.validate_content(self.content) if self.content else {}
        name = self.connector_class.name
        values = {
            "content": content,
            "action": {"id": "offer-1", "features": {}, "content": {name: content}},
            "recipient": dict(self.recipient),
            "variables": dict(self.variables),
        }
        values.update(overrides)
        return make_delivery(name, **values)

    def working_config(self, request) -> dict:
        """Plugin settings under which send() succeeds (start a local server here if it
        needs one, with ``request.getfixturevalue``). Used by :meth:`working_connector` and
        by the end-to-end cases' app."""
        return dict(self.plugin_config)

    def working_connector(self, request) -> Connector:
        """A connector whose send() succeeds (default: on :meth:`working_config`)."""
        return self.make_connector(self.working_config(request))

    def transient_case(self) -> tuple[Connector, Delivery] | None:
        """A connector and a delivery whose send() must raise TransientDeliveryError."""
        if self.transient_config is None:
            return None
        return self.make_connector({**self.plugin_config, **self.transient_config}), self.delivery()

    def permanent_case(self) -> tuple[Connector, Delivery] | None:
        """A connector and a delivery whose send() must raise PermanentDeliveryError."""
        if self.permanent_recipient is None:
            return None
        return self.make_connector(), self.delivery(recipient=dict(self.permanent_recipient))

    def unhealthy_case(self) -> Connector | None:
        """A connector whose health() must say not ok (what it depends on is down)."""
        if self.unhealthy_config is None:
            return None
        return self.make_connector({**self.plugin_config, **self.unhealthy_config})

    def webhook_body(self, decision_id: uuid.UUID) -> bytes:
        """What your provider posts back about a message HPE sent for ``decision_id``
        (default: HPE's generic format, a ``delivered`` event). Providers must echo the
        ``decision_id`` HPE gave them (message metadata, a reference field): it is how an
        event finds its decision."""
        event = {"type": "delivered", "decision_id": str(decision_id), "event_id": "kit-1"}
        return json.dumps({"events": [event]}).encode()

    def webhook_headers(self, body: bytes, tenant: Tenant) -> dict[str, str]:
        """The callback's headers (default: HPE's own signature with the workspace's
        webhook secret). A provider with its own scheme signs here, and the connector's
        ``hpe_verify_webhook`` checks it."""
        return tenant.signed(body)

    # --- the contract: the class alone --------------------------------------------------

    def _register(self, register_plugin):
        cls = self.connector_class
        if self.plugin is not None:
            return register_plugin(self.plugin, f"contract-{cls.name}")
        from hpe_core import hookimpl

        class Shim:
            @hookimpl
            def hpe_register_connectors(self):
                return [cls]

        return register_plugin(Shim(), f"contract-{cls.name}")

    def test_declares_a_channel(self):
        """The class names its channel and describes it."""
        cls = self.connector_class
        assert issubclass(cls, Connector)
        assert cls.name and cls.name.isidentifier(), "name: a short identifier, e.g. 'sms'"
        assert cls.description, "description: one line for GET /channels"

    def test_registers_through_the_hook(self, hpe_pm, register_plugin):
        """hpe_register_connectors returns the class, so HPE finds the channel."""
        from plugins.manager import connectors

        self._register(register_plugin)
        assert connectors(hpe_pm)[self.connector_class.name] is self.connector_class

    def test_settings_validate(self):
        """The plugin config, the sample content and the sample recipient pass the
        declared schemas."""
        cls = self.connector_class
        cls.validate_plugin_config(self.plugin_config)
        if self.content:
            cls.validate_content(self.content)
        cls.validate_recipient(self.recipient)

    def test_send_returns_a_delivery_result(self, request):
        """send() returns a DeliveryResult with a known status."""
        result = self.working_connector(request).send(self.delivery())
        assert isinstance(result, DeliveryResult)
        assert result.status in ("sent", "rendered", "queued")

    def test_transient_failure_is_transient(self):
        """A failure that may pass (server down) raises TransientDeliveryError."""
        case = self.transient_case()
        if case is None:
            pytest.skip("set transient_config (or override transient_case) to check this")
        connector, delivery = case
        with pytest.raises(TransientDeliveryError):
            connector.send(delivery)

    def test_permanent_failure_is_permanent(self):
        """A failure retrying cannot fix (bad recipient) raises PermanentDeliveryError."""
        case = self.permanent_case()
        if case is None:
            pytest.skip("set permanent_recipient (or override permanent_case) to check this")
        connector, delivery = case
        with pytest.raises(PermanentDeliveryError):
            connector.send(delivery)

    def test_health_reports_a_status(self, request):
        """health() answers with a HealthStatus (never raises), ok when things work."""
        status = self.working_connector(request).health()
        assert isinstance(status, HealthStatus)
        assert status.ok, f"health() says not ok while send() works: {status.detail}"

    def test_health_can_say_not_ok(self):
        """health() says not ok when what the channel depends on is down: a check that
        always says ok tells an operator nothing."""
        if self.health_checks_nothing:
            pytest.skip("health_checks_nothing: this channel depends on nothing")
        connector = self.unhealthy_case()
        if connector is None:
            pytest.fail(
                "Set unhealthy_config (or override unhealthy_case) to settings under which "
                "health() must say not ok, e.g. a gateway URL nothing listens on; or set "
                "health_checks_nothing = True if the channel depends on nothing.",
                pytrace=False,
            )
        status = connector.health()
        assert isinstance(status, HealthStatus)
        assert not status.ok, f"health() says ok with what it depends on down: {status.detail}"

    def test_parses_webhooks_into_events(self):
        """parse_webhook() turns the provider's callback into events of its decision."""
        decision_id = uuid.uuid4()
        events = self.make_connector().parse_webhook(
            WebhookRequest(self.connector_class.name, "kit", {}, self.webhook_body(decision_id))
        )
        assert isinstance(events, list) and all(isinstance(e, InboundEvent) for e in events)
        assert events, "parse_webhook() returned no event for the provider's callback"
        assert decision_id in {e.decision_id for e in events}, (
            "no event carries the decision_id: providers must echo it back"
        )

    # --- the contract: inside HPE, end to end -------------------------------------------

    def kit_app(self, request, register_plugin, make_hpe_app):
        """A kit app with the plugin registered on :meth:`working_config`, a tenant with a
        webhook secret, and a configuration on the channel with one action."""
        self._register(register_plugin)
        name = self.connector_class.name
        app = make_hpe_app(PLUGINS={name: self.working_config(request)})
        tenant = make_tenant(app)
        client = app.test_client()
        action = {"id": "offer-1", "content": {name: dict(self.content)} if self.content else {}}
        response = client.post(
            f"{BASE}/",
            json={"name": "contract", "settings": {"channels": [name], "actions": [action]}},
            headers=tenant.headers,
        )
        assert response.status_code == 201, response.get_json()
        return app, client, tenant, response.get_json()["id"]

    def _decide(self, client, tenant, config_id, deliver: bool) -> dict:
        body = {"user_id": "kit-user", "channel": self.connector_class.name}
        if deliver:
            body["deliver"] = {"to": dict(self.recipient), "variables": dict(self.variables)}
        response = client.post(f"{BASE}/{config_id}/decisions", json=body, headers=tenant.headers)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def test_delivers_through_hpe(self, request, register_plugin, make_hpe_app):
        """A decision asked with ``deliver`` is sent by HPE's delivery job through the
        plugin (``hpe_deliver``): status sent after one attempt, no error."""
        app, client, tenant, config_id = self.kit_app(request, register_plugin, make_hpe_app)
        decided = self._decide(client, tenant, config_id, deliver=True)
        assert decided["delivery"]["status"] == "pending"
        assert run_deliveries(app) == 1
        status = client.get(
            f"{BASE}/{config_id}/decisions/{decided['decision_id']}", headers=tenant.headers
        ).get_json()["delivery"]
        assert status["status"] == "sent", f"the delivery {status['status']}: {status['error']}"
        assert status["attempts"] == 1 and status["error"] is None

    def test_webhook_becomes_an_outcome(self, request, register_plugin, make_hpe_app):
        """The provider's callback for a decision, posted signed to
        ``POST /webhooks/<channel>``, is accepted and stored as an outcome of it."""
        app, client, tenant, config_id = self.kit_app(request, register_plugin, make_hpe_app)
        decided = self._decide(client, tenant, config_id, deliver=False)
        body = self.webhook_body(uuid.UUID(decided["decision_id"]))
        response = client.post(
            f"{BASE}/webhooks/{self.connector_class.name}",
            data=body,
            headers=self.webhook_headers(body, tenant),
        )
        assert response.status_code == 202, response.get_json()
        answer = response.get_json()
        assert answer["accepted"] >= 1, (
            f"no outcome stored from the callback ({answer}): parse_webhook() returned no "
            "event tied to the decision"
        )
        outcomes = client.get(
            f"{BASE}/{config_id}/decisions/{decided['decision_id']}", headers=tenant.headers
        ).get_json()["outcomes"]
        assert outcomes, "the callback's events did not reach the decision"

    def test_listed_by_the_api(self, register_plugin, make_hpe_app):
        """GET /channels lists the channel once the plugin is registered."""
        self._register(register_plugin)
        app = make_hpe_app(PLUGINS={self.connector_class.name: dict(self.plugin_config)})
        tenant = make_tenant(app)
        response = app.test_client().get(f"{BASE}/channels", headers=tenant.headers)
        assert response.status_code == 200
        assert self.connector_class.name in [c["name"] for c in response.get_json()]
