"""Email headers (issue 15, also seen): List-Unsubscribe goes out as the plain header RFC
8058's one-click unsubscribe needs, and a line break in a recipient's name is refused
(422 at the API; a permanent failure for a delivery already stored), never retried."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from connectors.email.connector import EmailConnector
from hpe_core.deliver.channels import ChannelRuntime
from hpe_core.deliver.tracking_links import TrackingLinks
from hpe_core.errors import PermanentDeliveryError
from hpe_core.store.models import Delivery
from plugins.testing import make_delivery
from tests.api.conftest import assert_error
from tests.connectors.conftest import (
    EMAIL_ACTION,
    channel_app,
    create_config,
    decide,
    email_plugin_config,
    new_tenant,
)
from web.extensions import app_runtime

HOSTILE_NAMES = ["Ada\r\nBcc: all@example.org", "Ada\nX-Injected: 1", "Ada\rB", "Ada\x00"]


@pytest.fixture
def email_app(sqlite_url, tmp_path, smtp_server):
    app = channel_app(sqlite_url, tmp_path, email=email_plugin_config(smtp_server.port))
    yield app
    app_runtime(app).engine.dispose()


def test_list_unsubscribe_is_a_plain_header(email_app, smtp_server):
    """On the wire: ``List-Unsubscribe: <http://...>``, not ``=?utf-8?q?=3Chttp...``."""
    client = email_app.test_client()
    tenant = new_tenant(email_app)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    deliver = {"to": {"email": "ada@example.org"}, "variables": {"first_name": "Ada"}}
    response = decide(client, tenant, config_id, deliver=deliver)
    assert response.status_code == 201, response.get_json()
    app_runtime(email_app).jobs.run_pending_deliveries()
    smtp_server.wait_for(1)
    raw = smtp_server.envelopes[0].content.decode()
    headers = raw.split("\r\n\r\n", 1)[0].replace("\r\n ", " ")
    [line] = [h for h in headers.split("\r\n") if h.startswith("List-Unsubscribe:")]
    assert line.startswith("List-Unsubscribe: <http://hpe.test/t/u/"), line
    assert line.endswith(">") and "=?" not in line
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in headers


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_line_break_in_the_recipients_name_is_a_422(email_app, name):
    """The API refuses the name before anything is decided."""
    client = email_app.test_client()
    tenant = new_tenant(email_app)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    deliver = {"to": {"email": "ada@example.org", "name": name}}
    body = assert_error(decide(client, tenant, config_id, deliver=deliver), 422)
    assert "name" in str(body["errors"])


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_the_connector_refuses_such_a_name_for_good(name):
    """Rendering a delivery with such a name raises PermanentDeliveryError, not a header
    error the delivery job would retry."""
    connector = EmailConnector(
        email_plugin_config(25), ChannelRuntime(TrackingLinks("k" * 40, None), None)
    )
    delivery = make_delivery(
        "email",
        action=EMAIL_ACTION,
        content=EMAIL_ACTION["content"]["email"],
        variables={"first_name": "Ada"},
        recipient={"email": "ada@example.org", "name": name},
    )
    with pytest.raises(PermanentDeliveryError, match="deliver.to.name"):
        connector.render(delivery)


def test_a_stored_delivery_with_such_a_name_fails_at_once(email_app, smtp_server):
    """A delivery already stored with a line break in the name (e.g. before the API
    checked it) fails permanently at its first attempt: nothing is sent, nothing retried."""
    client = email_app.test_client()
    tenant = new_tenant(email_app)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    deliver = {"to": {"email": "ada@example.org", "name": "Ada"}, "variables": {"first_name": "A"}}
    assert decide(client, tenant, config_id, deliver=deliver).status_code == 201
    session = app_runtime(email_app).sessions()
    try:
        row = session.scalars(sa.select(Delivery)).one()
        row.recipient = {"email": "ada@example.org", "name": HOSTILE_NAMES[0]}
        session.commit()
    finally:
        session.close()
    app_runtime(email_app).jobs.run_pending_deliveries()
    session = app_runtime(email_app).sessions()
    try:
        row = session.scalars(sa.select(Delivery)).one()
        assert (row.status, row.attempts) == ("failed", 1), (row.status, row.error)
    finally:
        session.close()
    assert smtp_server.messages == []
