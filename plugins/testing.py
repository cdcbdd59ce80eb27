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
            "SECRET_KEY": "hpe-test-kit",
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
    def __init__(self, workspace_id: str, key: str):
        self.id, self.key = workspace_id, key
        self.headers = {"Authorization": f"Bearer {key}"}


@pytest.fixture
def hpe_tenant(hpe_app):
    """A workspace with a secret API key on ``hpe_app``."""
    from hpe_core.tenancy import workspaces

    session = app_runtime(hpe_app).sessions()
    try:
        workspace_id = f"kit-{uuid.uuid4().hex[:8]}"
        workspaces.create_workspace(session, workspace_id)
        _row, key = workspaces.create_key(session, workspace_id)
        session.commit()
    finally:
        session.close()
    return Tenant(workspace_id, key)


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

            def working_connector(self, request): ...   # optional, see below

    Set ``transient_config`` / ``permanent_recipient`` (or override
    ``transient_case`` / ``permanent_case``) to prove the error mapping; a case left
    as None is skipped with a message saying what to set.
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

    # --- what a subclass may override ---------------------------------------------------

    def runtime(self) -> ChannelRuntime:
        return ChannelRuntime(
            links=TrackingLinks("hpe-test-kit", "http://hpe.test"), public_url="http://hpe.test"
        )

    def make_connector(self, config: dict | None = None) -> Connector:
        cls = self.connector_class
        return cls(
            cls.validate_plugin_config(self.plugin_config if config is None else config),
            self.runtime(),
        )

    def delivery(self, **overrides) -> Delivery:
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

    def working_connector(self, request) -> Connector:
        """A connector whose send() succeeds (start a local server here if it needs one,
        using ``request.getfixturevalue``)."""
        return self.make_connector()

    def transient_case(self) -> tuple[Connector, Delivery] | None:
        if self.transient_config is None:
            return None
        return self.make_connector({**self.plugin_config, **self.transient_config}), self.delivery()

    def permanent_case(self) -> tuple[Connector, Delivery] | None:
        if self.permanent_recipient is None:
            return None
        return self.make_connector(), self.delivery(recipient=dict(self.permanent_recipient))

    # --- the contract -------------------------------------------------------------------

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
        """The plugin config and the sample content pass the declared schemas."""
        self.connector_class.validate_plugin_config(self.plugin_config)
        if self.content:
            self.connector_class.validate_content(self.content)

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
        """health() answers with a HealthStatus (never raises)."""
        assert isinstance(self.working_connector(request).health(), HealthStatus)

    def test_parses_webhooks_into_events(self):
        """parse_webhook() turns HPE's generic event format into InboundEvents."""
        decision_id = uuid.uuid4()
        body = b'{"events": [{"type": "conversion", "decision_id": "%s", "value": 5}]}' % (
            str(decision_id).encode()
        )
        events = self.make_connector().parse_webhook(
            WebhookRequest(self.connector_class.name, "kit", {}, body)
        )
        assert isinstance(events, list) and all(isinstance(e, InboundEvent) for e in events)

    def test_listed_by_the_api(self, register_plugin, make_hpe_app):
        """GET /channels lists the channel once the plugin is registered."""
        from hpe_core.tenancy import workspaces

        self._register(register_plugin)
        app = make_hpe_app(PLUGINS={self.connector_class.name: dict(self.plugin_config)})
        session = app_runtime(app).sessions()
        try:
            workspaces.create_workspace(session, "contract")
            _row, key = workspaces.create_key(session, "contract")
            session.commit()
        finally:
            session.close()
        response = app.test_client().get(
            f"{BASE}/channels", headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200
        assert self.connector_class.name in [c["name"] for c in response.get_json()]
