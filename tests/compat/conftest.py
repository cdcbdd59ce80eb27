"""A live HPE on a loopback port, driven by Microsoft's own ``azure-ai-personalizer`` client.

Each test gets a fresh app on SQLite and on PostgreSQL (the ``app`` fixture), served on a
loopback port by werkzeug in a thread; a workspace with a secret key; a configuration to
be the Personalizer loop; and the SDK's two clients pointed at
``http://127.0.0.1:<port>/compat/<config id>``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import uuid

import pytest
import sqlalchemy as sa
from azure.ai.personalizer import PersonalizerAdministrationClient, PersonalizerClient
from azure.core.credentials import AzureKeyCredential
from werkzeug.serving import make_server

from hpe_core.learn import learning
from hpe_core.store.models import Decision
from tests.conftest import BASE, Tenant
from web.extensions import app_runtime

#: A Personalizer-style configuration: a placeholder action (HPE needs one to start),
#: one channel, 50% holdout so both arms fill up quickly in tests.
LOOP_SETTINGS = {
    "actions": [{"id": "pasta", "features": {"cuisine": "italian"}}],
    "channels": ["web"],
    "holdout": {"percent": 50},
}


@dataclasses.dataclass
class Loop:
    """One configuration served as a Personalizer loop."""

    app: object
    client: object  # Flask's test client, for HPE's own API
    tenant: Tenant
    config_id: str
    base: str

    @property
    def endpoint(self) -> str:
        return f"{self.base}/compat/{self.config_id}"

    def personalizer(self, key: str | None = None) -> PersonalizerClient:
        return PersonalizerClient(self.endpoint, AzureKeyCredential(key or self.tenant.key))

    def admin(self, key: str | None = None) -> PersonalizerAdministrationClient:
        return PersonalizerAdministrationClient(
            self.endpoint, AzureKeyCredential(key or self.tenant.key)
        )

    def settings(self) -> dict:
        response = self.client.get(f"{BASE}/{self.config_id}", headers=self.tenant.headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["settings"]

    def patch(self, settings: dict) -> dict:
        response = self.client.patch(
            f"{BASE}/{self.config_id}", json={"settings": settings}, headers=self.tenant.headers
        )
        assert response.status_code == 200, response.get_json()
        app_runtime(self.app).decisions.invalidate(uuid.UUID(self.config_id))
        return response.get_json()

    def decisions(self) -> list[Decision]:
        """Every logged decision of the configuration, oldest first."""
        session = app_runtime(self.app).sessions()
        try:
            return list(
                session.scalars(
                    sa.select(Decision)
                    .where(Decision.config_id == uuid.UUID(self.config_id))
                    .order_by(Decision.created_at)
                )
            )
        finally:
            session.close()

    def learn(self, *, after: dt.timedelta = dt.timedelta(days=40)) -> int:
        """Learn every decision whose reward window closes within ``after``."""
        session = app_runtime(self.app).sessions()
        try:
            report = learning.learn_all_closed(
                session, uuid.UUID(self.config_id), now=dt.datetime.now(dt.UTC) + after
            )
            return report.learned
        finally:
            session.close()

    def metrics(self) -> dict:
        today = dt.datetime.now(dt.UTC).date()
        query = f"from={today - dt.timedelta(days=1)}&to={today + dt.timedelta(days=1)}"
        response = self.client.get(
            f"{BASE}/{self.config_id}/metrics?{query}", headers=self.tenant.headers
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()


@pytest.fixture
def served(app):
    """``app`` on a free loopback port (threaded, as ``web.simulate.start_embedded_server``
    serves it): its base URL. Polled every 50 ms so that stopping it after each test is
    quick (werkzeug's default half second, hundreds of times, is minutes)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def make_loop(app, client, tenant, served):
    """``make_loop(settings=None, as_tenant=None)`` -> a new :class:`Loop`."""

    def make(settings: dict | None = None, as_tenant: Tenant | None = None) -> Loop:
        owner = as_tenant or tenant
        response = client.post(
            f"{BASE}/",
            json={"name": "Personalizer loop", "settings": settings or LOOP_SETTINGS},
            headers=owner.headers,
        )
        assert response.status_code == 201, response.get_json()
        return Loop(app, client, owner, response.get_json()["id"], served)

    return make


@pytest.fixture
def loop(make_loop) -> Loop:
    return make_loop()


def rank_request(**extra) -> dict:
    """A Rank body in Personalizer's own format (features as lists of objects)."""
    return {
        "contextFeatures": [{"user": {"tier": "gold"}}, {"device": "mobile"}],
        "actions": [
            {"id": "pasta", "features": [{"cuisine": "italian"}]},
            {"id": "sushi", "features": [{"cuisine": "japanese"}, {"price": {"eur": 12.5}}]},
            {"id": "salad", "features": [{"cuisine": "any", "tags": ["light", "green"]}]},
        ],
        **extra,
    }


def assert_personalizer_error(error, status: int, code: str) -> None:
    """The SDK raised for ``status`` with Personalizer's ``code`` and a message."""
    assert error.status_code == status, (error.status_code, error.message)
    assert error.error is not None, error.response.text()
    assert error.error.code == code, (error.error.code, error.error.message)
    assert error.error.message
