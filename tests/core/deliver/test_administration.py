"""An admin's changes to the workspace's channels: webhook secrets, channel settings and
consent, through the CLI's services and logged with the person as the actor."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from hpe_core.decide import consent
from hpe_core.deliver import administration, webhooks
from hpe_core.errors import InvalidInput, NotFound
from hpe_core.store.models import Activity
from hpe_core.tenancy import workspaces
from hpe_core.tenancy.workspaces import Principal
from web.extensions import app_runtime

ANN = Principal(workspace_id="acme", actor="user:ann@example.com")
SECRET_KEY = "test-secret-key"
T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


@pytest.fixture
def db(session):
    workspaces.create_workspace(session, "acme")
    workspaces.create_workspace(session, "globex")
    session.commit()
    return session


@pytest.fixture
def channels(app):
    return app_runtime(app).channels


def _logged(db, type):
    return [
        (row.workspace_id, row.actor, row.data)
        for row in db.scalars(select(Activity).where(Activity.type == type))
    ]


def test_a_new_webhook_secret_verifies_and_only_its_hint_is_logged(db):
    """The secret signs webhooks for the workspace at once; the log has its hint only."""
    row, secret = administration.create_webhook_secret(db, ANN, SECRET_KEY, now=T0)
    db.commit()
    body = b'{"events": []}'
    header = webhooks.sign(secret, body, int(T0.timestamp()))
    assert webhooks.verify(db, SECRET_KEY, "acme", header, body, now=T0)
    assert _logged(db, administration.WEBHOOK_SECRET_CREATED) == [
        ("acme", ANN.actor, {"hint": row.hint, "grace_hours": 24.0})
    ]
    assert secret not in str(_logged(db, administration.WEBHOOK_SECRET_CREATED))


def test_rotating_keeps_the_old_secret_for_the_grace_period(db):
    """After a rotation the list says which secret is live, expiring or expired."""
    first, _ = administration.create_webhook_secret(db, ANN, SECRET_KEY, now=T0)
    second, _ = administration.create_webhook_secret(
        db, ANN, SECRET_KEY, grace=dt.timedelta(hours=2), now=T0 + dt.timedelta(hours=1)
    )
    db.commit()
    states = administration.secrets_of(db, ANN, now=T0 + dt.timedelta(hours=2))
    assert [(s.row.id, s.state) for s in states] == [(second.id, "live"), (first.id, "expiring")]
    later = administration.secrets_of(db, ANN, now=T0 + dt.timedelta(hours=4))
    assert [s.state for s in later] == ["live", "expired"]
    assert administration.secrets_of(db, Principal("globex", "user:x")) == []


@pytest.mark.parametrize("hours", [-1, 24 * 30 + 1])
def test_a_grace_period_out_of_range_is_refused(db, hours):
    """Grace periods run from 0 to 30 days; others are an error on ``grace_hours``."""
    with pytest.raises(InvalidInput) as refused:
        administration.create_webhook_secret(db, ANN, SECRET_KEY, grace=dt.timedelta(hours=hours))
    assert set(refused.value.errors) == {"grace_hours"}


def test_channel_settings_go_through_the_channels_schema_and_are_logged(db, channels):
    """The web channel's own schema validates; a change logs before and after; saving the
    same settings again logs nothing."""
    with pytest.raises(InvalidInput) as refused:
        administration.put_channel_settings(
            db, ANN, channels, "web", {"allowed_origins": ["https://ok.example", "nope"]}
        )
    assert list(refused.value.errors) == ["allowed_origins"]
    assert list(refused.value.errors["allowed_origins"]) == [1]  # the second origin
    db.rollback()
    settings = {"allowed_origins": ["https://shop.example"]}
    assert administration.put_channel_settings(db, ANN, channels, "web", settings) == settings
    administration.put_channel_settings(db, ANN, channels, "web", settings)
    db.commit()
    assert _logged(db, administration.CHANNEL_SETTINGS_CHANGED) == [
        ("acme", ANN.actor, {"channel": "web", "before": {}, "after": settings})
    ]
    with pytest.raises(NotFound):
        administration.put_channel_settings(db, ANN, channels, "fax", {})


def test_consent_is_looked_up_changed_and_logged(db, channels):
    """Default subscribed; a change records the person as the source and logs it; a
    withdrawal keeps its first reason."""
    found = administration.consent_of(db, ANN, channels, "email", "u-1")
    assert (found.status, found.source, found.updated_at) == ("subscribed", None, None)
    assert administration.set_consent(db, ANN, channels, "email", "u-1", "complained")
    db.commit()
    found = administration.consent_of(db, ANN, channels, "email", "u-1")
    assert (found.status, found.source) == ("complained", ANN.actor)
    assert found.updated_at is not None
    assert not consent.allowed(db, "acme", "email", "u-1")
    assert consent.allowed(db, "globex", "email", "u-1")
    assert not administration.set_consent(db, ANN, channels, "email", "u-1", "bounced")
    assert administration.set_consent(db, ANN, channels, "email", "u-1", "subscribed")
    db.commit()
    logged = _logged(db, administration.CONSENT_CHANGED)
    assert sorted(data["status"] for _ws, _actor, data in logged) == ["complained", "subscribed"]
    assert {(ws, actor, data["user_id"]) for ws, actor, data in logged} == {
        ("acme", ANN.actor, "u-1")
    }


def test_consent_needs_an_installed_channel_a_user_id_and_a_status(db, channels):
    """Each wrong input is an error on its own field."""
    with pytest.raises(InvalidInput) as refused:
        administration.consent_of(db, ANN, channels, "fax", "")
    assert set(refused.value.errors) == {"channel", "user_id"}
    with pytest.raises(InvalidInput) as refused:
        administration.set_consent(db, ANN, channels, "email", "u-1", "maybe")
    assert set(refused.value.errors) == {"status"}
