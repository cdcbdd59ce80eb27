"""A custom attribution model shipped as a pluggy plugin, used end to end: registered,
selected in a configuration's settings, and applied by the attribution job."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from hpe_core import hookimpl
from hpe_core.store.models import Attribution, Outcome
from plugins.attribution import AttributionModel
from tests.conftest import BASE
from web.extensions import app_runtime


def email_double(touches, conversion_at, options):
    """Email touches count twice; the rest share what is left (docs/plugins.md's example)."""
    weights = [2.0 if touch.channel == "email" else 1.0 for touch in touches]
    total = sum(weights)
    return [weight / total for weight in weights]


class EmailDouble:
    @hookimpl
    def hpe_register_attribution_models(self):
        return [AttributionModel("email_double", "Email touches count twice.", email_double)]


class Broken:
    @hookimpl
    def hpe_register_attribution_models(self):
        return [AttributionModel("broken", "Gives every touch all the credit.", _all_to_all)]


def _all_to_all(touches, conversion_at, options):
    return [1.0] * len(touches)


def _journey(client, tenant, model: str) -> tuple[str, dict[str, uuid.UUID]]:
    """A configuration on ``model``, one user's decisions on email, web and ads, then a
    user-level purchase; returns the config id and channel -> decision id."""
    settings = {"actions": [{"id": "a"}], "attribution": {"model": model}}
    response = client.post(
        f"{BASE}/", json={"name": "x", "settings": settings}, headers=tenant.headers
    )
    assert response.status_code == 201, response.get_json()
    config_id = response.get_json()["id"]
    decisions = {}
    for channel in ("email", "web", "ads"):
        response = client.post(
            f"{BASE}/{config_id}/decisions",
            json={"user_id": "alice", "channel": channel, "context": {}},
            headers=tenant.headers,
        )
        assert response.status_code == 201, response.get_json()
        decisions[channel] = uuid.UUID(response.get_json()["decision_id"])
    response = client.post(
        f"{BASE}/{config_id}/outcomes",
        json={"user_id": "alice", "type": "conversion", "value": 80},
        headers=tenant.headers,
    )
    assert response.status_code == 202, response.get_json()
    return config_id, decisions


def _run_attribution(app, config_id: str) -> None:
    jobs = app_runtime(app).jobs
    assert jobs.enqueue_attribution(uuid.UUID(config_id))
    jobs.run_pending()


def test_a_plugin_model_credits_email_double(kit_app):
    """The plugin's model is offered, accepted in settings and used by the inline job:
    email gets 2/4, web and ads 1/4 each."""
    app, client, tenant = kit_app(EmailDouble())
    assert "email_double" in app_runtime(app).measurement.attribution_models
    config_id, decisions = _journey(client, tenant, "email_double")
    _run_attribution(app, config_id)
    with app_runtime(app).sessions() as session:
        rows = session.execute(
            sa.select(Attribution.decision_id, Attribution.credit, Attribution.model)
        ).all()
    assert {d: c for d, c, _ in rows} == pytest.approx(
        {decisions["email"]: 0.5, decisions["web"]: 0.25, decisions["ads"]: 0.25}
    )
    assert {m for _, _, m in rows} == {"email_double"}


def test_a_plugin_model_with_invalid_credit_writes_nothing(kit_app):
    """A model whose shares sum to 3 is refused: no rows, the outcome keeps waiting."""
    app, client, tenant = kit_app(Broken())
    config_id, _decisions = _journey(client, tenant, "broken")
    _run_attribution(app, config_id)
    with app_runtime(app).sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Attribution)) == 0
        assert session.scalar(sa.select(Outcome.attributed_at)) is None
