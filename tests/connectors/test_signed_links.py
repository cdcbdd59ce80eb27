"""Issue 15, finding 1, reproduced against the app: with the old public default key
(``dev-only-change-me``) anyone could forge tracking links (unsubscribe someone, count
opens and clicks) and recompute a stored webhook secret from its nonce. Now no app runs
on a known key, unsubscribe links work for email decisions only, and a rotation keeps
the links and secrets made under the old key working."""

from __future__ import annotations

import time
import urllib.parse
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.deliver import webhooks
from hpe_core.deliver.tracking_links import TrackingLinks
from hpe_core.runtime import Defaults
from hpe_core.store.models import Consent, Outcome, WebhookSecret
from tests.conftest import make_test_app
from tests.connectors.conftest import (
    EMAIL_ACTION,
    create_config,
    decide,
    new_tenant,
    post_webhook,
)
from web.extensions import app_runtime

PUBLIC_DEFAULT = "dev-only-change-me"  # what every HPE used before issue 15
OLD = "old-key-" + "o" * 40
NEW = "new-key-" + "n" * 40
WEB_ACTION = {"id": "hero", "channels": ["web"], "content": {"web": {"title": "Hi"}}}


@pytest.fixture
def embedded_app(sqlite_url, tmp_path):
    """The embedded default as an operator runs it: no HPE_SECRET_KEY anywhere (the
    default of hpe_core.runtime.Defaults; before issue 15 that was the public key)."""
    app = make_test_app(
        sqlite_url, tmp_path, SECRET_KEY=Defaults.SECRET_KEY, PUBLIC_URL="http://hpe.test"
    )
    yield app
    app_runtime(app).engine.dispose()


def _rows(app, model, *where):
    session = app_runtime(app).sessions()
    try:
        return list(session.scalars(sa.select(model).where(*where)))
    finally:
        session.close()


def _email_decision(app) -> tuple[str, object, object]:
    client = app.test_client()
    tenant = new_tenant(app)
    actions = [EMAIL_ACTION, WEB_ACTION]
    config_id = create_config(client, tenant, actions, channels=("email", "web"))
    response = decide(client, tenant, config_id)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["decision_id"], client, (tenant, config_id)


def _path(links: TrackingLinks, kind: str, decision_id: str) -> str:
    return urllib.parse.urlsplit(links.url(kind, uuid.UUID(decision_id))).path


def test_links_forged_with_the_public_default_key_do_nothing(embedded_app):
    """An attacker's /t/u, /t/o and /t/c signed with dev-only-change-me are 404s: the user
    stays subscribed, no open or click is counted."""
    decision_id, client, (tenant, config_id) = _email_decision(embedded_app)
    forger = TrackingLinks(PUBLIC_DEFAULT, "http://hpe.test")
    assert client.post(_path(forger, "unsubscribe", decision_id)).status_code == 404
    assert client.get(_path(forger, "open", decision_id)).status_code == 404
    click = forger.url("click", uuid.UUID(decision_id), "shop")
    assert client.get(urllib.parse.urlsplit(click).path).status_code == 404
    assert _rows(embedded_app, Consent) == []
    assert _rows(embedded_app, Outcome) == []
    again = decide(client, tenant, config_id, user_id="u1")
    assert again.status_code == 201  # not no_consent


def test_the_embedded_default_signs_with_its_own_generated_key(embedded_app, tmp_path):
    """The key is the instance folder's generated one, never the public default."""
    key = embedded_app.config["SECRET_KEY"]
    assert key != PUBLIC_DEFAULT
    assert (tmp_path / "instance" / "secret_key").read_text().strip() == key


def test_a_webhook_secret_is_not_recomputable_from_a_database_dump(embedded_app):
    """With only the stored nonce (a dump) and the public default, the secret is not found."""
    session = app_runtime(embedded_app).sessions()
    try:
        new_tenant(embedded_app)
        _row, secret = webhooks.create_secret(session, "acme", embedded_app.config["SECRET_KEY"])
        session.commit()
        [stored] = session.scalars(sa.select(WebhookSecret)).all()
    finally:
        session.close()
    assert webhooks._secret(PUBLIC_DEFAULT, stored.nonce) != secret
    forged = webhooks._secret(PUBLIC_DEFAULT, stored.nonce)
    answer = post_webhook(
        embedded_app.test_client(),
        "email",
        {"events": [{"type": "unsubscribe", "config_id": str(uuid.uuid4())}]},
        forged,
    )
    assert answer.status_code == 401


def test_unsubscribe_links_work_for_email_decisions_only(sqlite_url, tmp_path):
    """A validly signed unsubscribe token naming a web decision changes nothing: only an
    email decision's link withdraws email consent."""
    app = make_test_app(sqlite_url, tmp_path, SECRET_KEY=OLD, PUBLIC_URL="http://hpe.test")
    try:
        _decision_id, client, (tenant, config_id) = _email_decision(app)
        web = decide(client, tenant, config_id, user_id="u1", channel="web")
        assert web.status_code == 201
        links = app_runtime(app).channels["email"].runtime.links
        path = _path(links, "unsubscribe", web.get_json()["decision_id"])
        assert client.post(path).status_code == 404
        assert client.get(path).status_code == 404
        assert _rows(app, Consent) == []
    finally:
        app_runtime(app).engine.dispose()


def test_a_rotation_keeps_old_links_and_webhook_secrets_working(sqlite_url, tmp_path):
    """Links and webhook secrets made under the old key keep working while it is a
    fallback; new ones are signed with the new key; without the fallback they stop."""
    before = make_test_app(sqlite_url, tmp_path, SECRET_KEY=OLD, PUBLIC_URL="http://hpe.test")
    try:
        decision_id, _client, _ = _email_decision(before)
        old_links = app_runtime(before).channels["email"].runtime.links
        unsubscribe = _path(old_links, "unsubscribe", decision_id)
        session = app_runtime(before).sessions()
        _row, secret = webhooks.create_secret(session, "acme", before.config["SECRET_KEY"])
        session.commit()
        session.close()
    finally:
        app_runtime(before).engine.dispose()

    after = make_test_app(
        sqlite_url,
        tmp_path,
        SECRET_KEY=NEW,
        SECRET_KEY_FALLBACKS=[OLD],
        PUBLIC_URL="http://hpe.test",
    )
    try:
        client = after.test_client()
        new_links = app_runtime(after).channels["email"].runtime.links
        assert _path(new_links, "unsubscribe", decision_id) != unsubscribe
        assert client.get(unsubscribe).status_code == 200
        body = {"events": [{"type": "open", "decision_id": decision_id}]}
        assert post_webhook(client, "email", body, secret).status_code == 202
    finally:
        app_runtime(after).engine.dispose()

    retired = make_test_app(sqlite_url, tmp_path, SECRET_KEY=NEW, PUBLIC_URL="http://hpe.test")
    try:
        client = retired.test_client()
        assert client.get(unsubscribe).status_code == 404
        body = {"events": [{"type": "click", "decision_id": decision_id}]}
        answer = post_webhook(client, "email", body, secret, timestamp=int(time.time()))
        assert answer.status_code == 401
    finally:
        app_runtime(retired).engine.dispose()


def test_production_refuses_to_start_without_a_secret_key(postgres_url, tmp_path):
    """PostgreSQL and no HPE_SECRET_KEY: the app does not start (a clear error)."""
    with pytest.raises(RuntimeError, match="HPE_SECRET_KEY is not set"):
        make_test_app(postgres_url, tmp_path, SECRET_KEY=Defaults.SECRET_KEY)
