"""The email channel end to end on loopback: decide → deliver over SMTP (aiosmtpd) →
tracked click, open pixel and unsubscribe come back as outcomes and consent."""

from __future__ import annotations

import re
import urllib.parse

import pytest
import sqlalchemy as sa

from hpe_core.store.models import Activity, Consent, Decision, Delivery, Outcome
from tests.conftest import BASE
from tests.connectors.conftest import (
    EMAIL_ACTION,
    SmtpServer,
    channel_app,
    create_config,
    decide,
    email_plugin_config,
    free_port,
    new_tenant,
)
from web.extensions import app_runtime


@pytest.fixture
def email_app(database_url, tmp_path, smtp_server):
    app = channel_app(database_url, tmp_path, email=email_plugin_config(smtp_server.port))
    yield app
    app_runtime(app).engine.dispose()


def _deliver(app, client, tenant, config_id, **deliver):
    deliver.setdefault("to", {"email": "ada@example.org", "name": "Ada"})
    deliver.setdefault("variables", {"first_name": "Ada"})
    response = decide(client, tenant, config_id, deliver=deliver)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["delivery"]["status"] == "pending"
    app_runtime(app).jobs.run_pending_deliveries()
    return body


def _rows(app, model, *where):
    session = app_runtime(app).sessions()
    try:
        return list(session.scalars(sa.select(model).where(*where)))
    finally:
        session.close()


def _links(message) -> dict:
    html = message.get_body(("html",)).get_content()
    return {
        "hrefs": re.findall(r'href="([^"]+)"', html),
        "pixel": re.findall(r'<img src="([^"]+)"', html),
        "html": html,
    }


def test_email_decision_is_delivered_over_smtp(email_app, smtp_server):
    """A decision with deliver arrives at the SMTP server rendered for the user."""
    client = email_app.test_client()
    tenant = new_tenant(email_app)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    body = _deliver(email_app, client, tenant, config_id)

    [message] = smtp_server.wait_for(1)
    assert message["To"] == "Ada <ada@example.org>"
    assert message["From"] == "Shop <offers@shop.example>"
    assert message["Subject"] == "Ada: 20% off"
    assert message["X-HPE-Decision-Id"] == body["decision_id"]
    assert body["decision_id"] in message["X-SMTPAPI"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Hi Ada" in message.get_body(("plain",)).get_content()
    [row] = _rows(email_app, Delivery)
    assert row.status == "sent" and row.attempts == 1
    assert row.recipient is None and row.variables is None  # personal data erased
    assert row.result["provider_id"] == message["Message-ID"]


def test_links_are_tracked_and_only_configured_urls_redirect(email_app, smtp_server):
    """Configured links become signed redirects that record a click; others stay as-is."""
    client = email_app.test_client()
    tenant = new_tenant(email_app)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    body = _deliver(email_app, client, tenant, config_id)
    links = _links(smtp_server.wait_for(1)[0])

    tracked = [h for h in links["hrefs"] if h.startswith("http://hpe.test/t/c/")]
    assert len(tracked) == 2  # shop (literal href) and terms ({{ links.terms }})
    assert "https://elsewhere.example/" in links["hrefs"]  # not configured: untouched
    assert "http://hpe.test/t/c/" in smtp_server.messages[0].get_body(("plain",)).get_content()

    path = urllib.parse.urlsplit(tracked[0]).path
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == "https://shop.example/spring?a=1&b=2"
    assert client.get(path).status_code == 302  # a second click is fine, counted once

    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert client.get(tampered).status_code == 404
    clicks = _rows(email_app, Outcome, Outcome.type == "click")
    assert [(str(o.decision_id), o.source) for o in clicks] == [(body["decision_id"], "tracking")]


def test_open_pixel_records_an_open(email_app, smtp_server):
    """The pixel answers a GIF and records one open for the decision."""
    client = email_app.test_client()
    tenant = new_tenant(email_app)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    _deliver(email_app, client, tenant, config_id)
    [pixel] = _links(smtp_server.wait_for(1)[0])["pixel"]
    response = client.get(urllib.parse.urlsplit(pixel).path)
    assert response.status_code == 200 and response.mimetype == "image/gif"
    assert response.headers["Cache-Control"].startswith("no-store")
    assert len(_rows(email_app, Outcome, Outcome.type == "open")) == 1


def test_one_click_unsubscribe_stops_email_decisions(email_app, smtp_server):
    """POST to the List-Unsubscribe URL withdraws consent: later email decisions are empty."""
    client = email_app.test_client()
    tenant = new_tenant(email_app)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    _deliver(email_app, client, tenant, config_id)
    message = smtp_server.wait_for(1)[0]
    url = message["List-Unsubscribe"].strip("<>")
    path = urllib.parse.urlsplit(url).path
    page = client.get(path)  # a link scanner's GET changes nothing
    assert page.status_code == 200 and b"<form" in page.data
    assert _rows(email_app, Consent) == []
    assert client.post(path, data="List-Unsubscribe=One-Click").status_code == 200

    [row] = _rows(email_app, Consent)
    assert (row.channel, row.user_id, row.status) == ("email", "u1", "unsubscribed")
    again = decide(client, tenant, config_id)
    assert again.status_code == 200
    assert again.get_json()["action_id"] is None
    assert again.get_json()["reason"] == "no_consent"
    assert len(_rows(email_app, Outcome, Outcome.type == "unsubscribe")) == 1
    assert _rows(email_app, Activity, Activity.type == "consent.changed")


def test_refused_connection_is_retried_then_delivered(sqlite_url, tmp_path):
    """SMTP down: the attempt is transient and retried; once the server is up it arrives."""
    port = free_port()
    app = channel_app(sqlite_url, tmp_path, email=email_plugin_config(port))
    client = app.test_client()
    tenant = new_tenant(app)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    _deliver(app, client, tenant, config_id)
    [row] = _rows(app, Delivery)
    assert (row.status, row.attempts) == ("retrying", 1)
    assert "unavailable" in row.error

    server = SmtpServer(port).start()
    try:
        assert app_runtime(app).jobs.run_pending_deliveries() == 1
        assert len(server.wait_for(1)) == 1
    finally:
        server.stop()
    [row] = _rows(app, Delivery)
    assert (row.status, row.attempts) == ("sent", 2)
    app_runtime(app).engine.dispose()


def test_retries_exhausted_is_a_failure_activity(sqlite_url, tmp_path):
    """After the last retry the delivery fails and a delivery.failed activity is logged."""
    app = channel_app(sqlite_url, tmp_path, email=email_plugin_config(free_port()))
    client = app.test_client()
    tenant = new_tenant(app)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    _deliver(app, client, tenant, config_id)
    while app_runtime(app).jobs.run_pending_deliveries():
        pass
    [row] = _rows(app, Delivery)
    assert (row.status, row.attempts) == ("failed", 4)
    assert row.recipient is None
    [activity] = _rows(app, Activity, Activity.type == "delivery.failed")
    assert activity.data["attempts"] == 4 and "gave up" in activity.data["why"]
    listed = client.get(
        f"{BASE}/{config_id}/activities",
        query_string={"type": "delivery.failed"},
        headers=tenant.headers,
    )
    assert listed.status_code == 200
    app_runtime(app).engine.dispose()


def test_missing_address_fails_permanently_at_once(sqlite_url, tmp_path, smtp_server):
    """A delivery without an email address fails for good on the first attempt."""
    app = channel_app(sqlite_url, tmp_path, email=email_plugin_config(smtp_server.port))
    client = app.test_client()
    tenant = new_tenant(app)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    _deliver(app, client, tenant, config_id, to={})
    [row] = _rows(app, Delivery)
    assert (row.status, row.attempts) == ("failed", 1)
    assert smtp_server.messages == []
    app_runtime(app).engine.dispose()


def test_templates_are_sandboxed(sqlite_app, tmp_path):
    """A template reaching for Python internals is refused when the config is saved."""
    client = sqlite_app.test_client()
    tenant = new_tenant(sqlite_app)
    evil = {
        "id": "evil",
        "content": {"email": {"subject": "x", "text": "{{ ''.__class__.__mro__ }}"}},
    }
    config_id = create_config(client, tenant, [evil])
    from jinja2.exceptions import SecurityError

    from connectors.email import templates

    with pytest.raises(SecurityError):
        templates.render("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})
    assert config_id


def test_invalid_email_content_is_a_422(sqlite_app):
    """Content the email connector cannot render is rejected with per-field errors."""
    client = sqlite_app.test_client()
    tenant = new_tenant(sqlite_app)
    bad = {"id": "bad", "content": {"email": {"subject": "{{ unclosed", "links": {"x": "ftp://a"}}}}
    response = client.post(
        f"{BASE}/", json={"name": "x", "settings": {"actions": [bad]}}, headers=tenant.headers
    )
    assert response.status_code == 422
    errors = response.get_json()["errors"]["settings"]["actions"]["0"]["content"]["email"]
    assert "subject" in errors and "links" in errors


def test_publishable_keys_cannot_send(sqlite_app):
    """deliver needs a secret key: a web page's publishable key gets a 403."""
    client = sqlite_app.test_client()
    tenant = new_tenant(sqlite_app)
    public = new_tenant(sqlite_app, kind="publishable")
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    response = decide(client, public, config_id, deliver={"to": {"email": "a@b.example"}})
    assert response.status_code == 403
    session = app_runtime(sqlite_app).sessions()
    try:
        assert session.scalar(sa.select(sa.func.count()).select_from(Decision)) == 0
    finally:
        session.close()


def test_health_reports_smtp(email_app, smtp_server, monkeypatch):
    """GET /channels?health=true checks the SMTP server (each call, without the cache)."""
    monkeypatch.setattr("web.api.channels.HEALTH_CACHE_SECONDS", 0)
    client = email_app.test_client()
    tenant = new_tenant(email_app)
    channels = client.get(f"{BASE}/channels?health=true", headers=tenant.headers).get_json()
    email = next(c for c in channels if c["name"] == "email")
    assert email["health"]["ok"] is True
    smtp_server.stop()
    channels = client.get(f"{BASE}/channels?health=true", headers=tenant.headers).get_json()
    assert next(c for c in channels if c["name"] == "email")["health"]["ok"] is False


def test_tracked_outcomes_reach_the_learning_loop(email_app, smtp_server):
    """Open + click through the email's own links become the decision's learned reward."""
    import datetime as dt
    import uuid

    from hpe_core.learn import learning

    client = email_app.test_client()
    tenant = new_tenant(email_app)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    body = _deliver(email_app, client, tenant, config_id)
    links = _links(smtp_server.wait_for(1)[0])
    client.get(urllib.parse.urlsplit(links["pixel"][0]).path)
    tracked = [h for h in links["hrefs"] if h.startswith("http://hpe.test/t/c/")]
    client.get(urllib.parse.urlsplit(tracked[0]).path)

    session = app_runtime(email_app).sessions()
    try:
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)  # the reward window closed
        report = learning.learn_all_closed(session, uuid.UUID(config_id), now=later)
        session.commit()
        decision = session.get(Decision, uuid.UUID(body["decision_id"]))
        assert report.learned == 1
        assert decision.engaged is True
        assert decision.reward == pytest.approx(1.1)  # open 0.1 + click 1.0 (defaults)
    finally:
        session.close()


def test_embedded_default_delivers_in_a_background_thread(sqlite_url, tmp_path, smtp_server):
    """Without Redis (and not in test mode), a thread of the API process delivers."""
    app = channel_app(sqlite_url, tmp_path, email=email_plugin_config(smtp_server.port))
    app.config["INLINE_SWEEPER"] = True
    from worker.queues import InlineBackend

    app_runtime(app).jobs = InlineBackend(app_runtime(app).sessions, background=True)
    client = app.test_client()
    tenant = new_tenant(app)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    response = decide(
        client,
        tenant,
        config_id,
        deliver={"to": {"email": "ada@example.org"}, "variables": {"first_name": "Ada"}},
    )
    assert response.status_code == 201
    assert len(smtp_server.wait_for(1, timeout=10)) == 1
    app_runtime(app).engine.dispose()
