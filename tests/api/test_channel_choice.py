"""``"channel": "auto"`` (or a list of channels) through the REST API: the engine chooses
the (channel, offer) pair, with eligibility, consent, caps and the budget applied per
channel, the holdout keeping its baseline, and the pair's propensity logged so learning
and evaluation stay exact."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.learn import learning
from hpe_core.store.models import Decision
from hpe_core.store.vocabulary import Variant
from tests.api.conftest import assert_error
from tests.conftest import BASE, make_test_app
from web.extensions import app_runtime

SETTINGS = {
    "channels": ["email", "web", "ads"],
    "actions": [
        {"id": "spring-sale", "features": {"category": "sale"}},
        {"id": "new-arrivals", "features": {"category": "new"}},
        {"id": "newsletter", "channels": ["email"], "features": {"category": "news"}},
    ],
    "reward": {"events": {"click": 1.0}, "wait_seconds": 1},
}


#: What one decision on ads costs here (PLUGINS ads.cost_per_decision), for the budget.
ADS_COST = 5.0


@pytest.fixture
def app(database_url, tmp_path):
    app = make_test_app(database_url, tmp_path, PLUGINS={"ads": {"cost_per_decision": ADS_COST}})
    app_runtime(app).decisions.usage.refresh_interval = 0
    yield app
    app_runtime(app).engine.dispose()


def _decide(client, tenant, config_id, user, channel="auto", **extra):
    return client.post(
        f"{BASE}/{config_id}/decisions",
        json={"user_id": user, "channel": channel, "context": {"segment": "a"}, **extra},
        headers=tenant.headers,
    )


def _rows(app, config_id):
    session = app_runtime(app).sessions()
    try:
        return session.scalars(
            sa.select(Decision)
            .where(Decision.config_id == uuid.UUID(config_id))
            .order_by(Decision.created_at)
        ).all()
    finally:
        session.close()


def test_auto_chooses_a_channel_and_an_offer_and_logs_the_pair(app, client, tenant, create_config):
    """The answer names the channel; the ranking lists every eligible (action, channel)
    with its probability (an action once per channel it may go out on); the log row keeps
    each entry's channel and the chosen pair's propensity."""
    config = create_config(settings=SETTINGS)
    response = _decide(client, tenant, config["id"], "u-1")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    pairs = {(r["action_id"], r["channel"]) for r in body["ranking"]}
    assert pairs == {
        ("spring-sale", "email"),
        ("spring-sale", "web"),
        ("spring-sale", "ads"),
        ("new-arrivals", "email"),
        ("new-arrivals", "web"),
        ("new-arrivals", "ads"),
        ("newsletter", "email"),
    }
    assert sum(r["probability"] for r in body["ranking"]) == pytest.approx(1.0)
    assert body["channel"] in {"email", "web", "ads"}
    chosen = next(
        r
        for r in body["ranking"]
        if (r["action_id"], r["channel"]) == (body["action_id"], body["channel"])
    )
    assert chosen["probability"] == pytest.approx(body["probability"])
    (row,) = _rows(app, config["id"])
    assert row.channel == body["channel"] and row.action_id == body["action_id"]
    assert len(row.eligible) == len(row.eligible_channels) == 7
    index = list(zip(row.eligible, row.eligible_channels, strict=True)).index(
        (row.action_id, row.channel)
    )
    assert row.probabilities[index] == pytest.approx(row.probability)
    assert "channel=" not in row.features  # the channel is in each entry, not the context


def test_a_fixed_channel_answers_its_channel_too(client, tenant, create_config):
    """The answer's channel is additive: a fixed-channel decision names its own."""
    config = create_config(settings=SETTINGS)
    body = _decide(client, tenant, config["id"], "u-1", channel="web").get_json()
    assert body["channel"] == "web"
    assert all("channel" not in r for r in body["ranking"])


def test_a_list_limits_the_channels(app, client, tenant, create_config):
    """["web", "ads"]: only those channels are considered."""
    config = create_config(settings=SETTINGS)
    body = _decide(client, tenant, config["id"], "u-2", channel=["web", "ads"]).get_json()
    assert {r["channel"] for r in body["ranking"]} == {"web", "ads"}
    assert "newsletter" not in {r["action_id"] for r in body["ranking"]}


def test_unknown_channels_are_refused(client, tenant, create_config):
    """A listed channel the configuration does not have: 422; so is an empty list."""
    config = create_config(settings=SETTINGS)
    assert_error(_decide(client, tenant, config["id"], "u", channel=["web", "sms"]), 422)
    assert_error(_decide(client, tenant, config["id"], "u", channel=[]), 422)
    assert_error(_decide(client, tenant, config["id"], "u", channel=[1]), 422)


def test_consent_caps_and_exclusions_apply_per_channel(app, client, tenant, create_config):
    """A user unsubscribed from email, capped on web and excluded from ads for their
    segment gets nothing on those channels, and still gets the others."""
    settings = {
        **SETTINGS,
        "guardrails": {
            "frequency_caps": [{"channel": "web", "max": 1, "per_hours": 24}],
            "channel_exclusions": [{"channel": "ads", "key": "segment", "in": ["b"]}],
        },
    }
    config = create_config(settings=settings)
    config_id = config["id"]
    # The cap: one web decision already.
    assert _decide(client, tenant, config_id, "u-3", channel="web").status_code == 201
    # Consent: email withdrawn for this user.
    session = app_runtime(app).sessions()
    try:
        from hpe_core.decide import consent

        consent.set_status(
            session,
            workspace_id=tenant.id,
            channel="email",
            user_id="u-3",
            status="unsubscribed",
            source="test",
        )
        session.commit()
    finally:
        session.close()
    body = _decide(client, tenant, config_id, "u-3").get_json()
    assert {r["channel"] for r in body["ranking"]} == {"ads"}
    # Excluded from ads too (segment b): nothing is left anywhere. The reason is the one
    # of the channel that got furthest through the steps (web: its frequency cap).
    body = client.post(
        f"{BASE}/{config_id}/decisions",
        json={"user_id": "u-3", "channel": "auto", "context": {"segment": "b"}},
        headers=tenant.headers,
    )
    assert body.status_code == 200
    assert body.get_json()["action_id"] is None
    assert body.get_json()["reason"] == "frequency_cap"


def test_the_budget_applies_with_each_channels_cost(client, tenant, create_config):
    """An action whose cost on ads (the channel costs ADS_COST a decision) no longer fits
    the budget is out on ads only."""
    settings = {**SETTINGS, "guardrails": {"budget": {"amount": 3.0, "period": "day"}}}
    config = create_config(settings=settings)
    body = _decide(client, tenant, config["id"], "u-4").get_json()
    assert {r["channel"] for r in body["ranking"]} == {"email", "web"}


def test_the_holdout_keeps_its_baseline_over_the_pairs(app, client, tenant, create_config):
    """A holdout user on auto gets the random baseline over every (action, channel); with
    a fixed baseline action, that action on one of its channels at random."""
    config = create_config(settings={**SETTINGS, "holdout": {"percent": 50}})
    holdout_bodies = []
    for n in range(40):
        body = _decide(client, tenant, config["id"], f"h-{n}").get_json()
        if body["variant"] == Variant.HOLDOUT:
            holdout_bodies.append(body)
    assert holdout_bodies
    for body in holdout_bodies:
        assert [r["probability"] for r in body["ranking"]] == pytest.approx([1 / 7] * 7)
    fixed = create_config(
        name="Fixed",
        settings={
            **SETTINGS,
            "holdout": {"percent": 50, "baseline": {"action_id": "spring-sale"}},
        },
    )
    for n in range(40):
        body = _decide(client, tenant, fixed["id"], f"h-{n}").get_json()
        if body["variant"] == Variant.HOLDOUT:
            assert body["action_id"] == "spring-sale"
            shares = {
                r["channel"]: r["probability"]
                for r in body["ranking"]
                if r["action_id"] == "spring-sale"
            }
            assert shares == pytest.approx({"email": 1 / 3, "web": 1 / 3, "ads": 1 / 3})


def test_auto_decisions_are_learned_and_evaluated(app, client, tenant, create_config):
    """Outcomes of auto decisions reach the model as (action, channel) examples: the
    model learns that web works for this audience; GET /evaluation scores them."""
    config = create_config(settings={**SETTINGS, "holdout": {"percent": 20}})
    config_id = config["id"]
    for n in range(300):
        body = _decide(client, tenant, config_id, f"l-{n}").get_json()
        if body["channel"] == "web":
            client.post(
                f"{BASE}/{config_id}/outcomes",
                json={"decision_id": body["decision_id"], "type": "click"},
                headers=tenant.headers,
            )
    session = app_runtime(app).sessions()
    try:
        report = learning.learn_all_closed(
            session, uuid.UUID(config_id), now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
        )
    finally:
        session.close()
    assert report.learned == 300 and report.skipped == 0
    app_runtime(app).decisions.models.reload(uuid.UUID(config_id))  # serve it now
    web_share = []
    for n in range(60):
        body = _decide(client, tenant, config_id, f"m-{n}").get_json()
        if body["variant"] == Variant.TREATMENT:
            web_share.append(
                sum(r["probability"] for r in body["ranking"] if r["channel"] == "web")
            )
    assert sum(web_share) / len(web_share) > 0.6
    evaluation = client.get(
        f"{BASE}/{config_id}/evaluation?policies=model,baseline,logged", headers=tenant.headers
    ).get_json()
    assert evaluation["n"] == 300, evaluation
    # The log was made by an untrained model and the holdout: about uniform over the
    # pairs, as the baseline is; the learned model would send nearly everyone to web.
    policies = evaluation["policies"]
    assert policies["model"]["ci_low"] > policies["logged"]["ci_high"]
    assert policies["model"]["ci_low"] > policies["baseline"]["ci_high"]


def test_a_dry_run_on_auto(client, tenant, create_config):
    """?dry_run=true answers the pair it would choose, logs nothing."""
    config = create_config(settings=SETTINGS)
    response = client.post(
        f"{BASE}/{config['id']}/decisions?dry_run=true",
        json={"user_id": "d", "channel": "auto", "context": {}},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["decision_id"] is None and body["channel"] in {"email", "web", "ads"}


def test_batch_decisions_take_auto(client, tenant, create_config):
    """The batch endpoint takes the same request shape."""
    config = create_config(settings=SETTINGS)
    response = client.post(
        f"{BASE}/{config['id']}/decisions/batch",
        json={
            "requests": [
                {"user_id": "b1", "channel": "auto", "context": {}},
                {"user_id": "b2", "channel": ["email"], "context": {}},
            ]
        },
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.get_json()
    first, second = response.get_json()["decisions"]
    assert first["channel"] in {"email", "web", "ads"} and second["channel"] == "email"


def test_delivery_on_a_chosen_channel_checks_the_recipient_for_that_channel(
    app, client, tenant, create_config
):
    """With a list of channels the recipient is checked by the channel the engine chose:
    a recipient email cannot accept is refused (422 under deliver.to, nothing logged);
    one it accepts is delivered on it."""
    config = create_config(settings=SETTINGS)
    refused = _decide(
        client, tenant, config["id"], "d1", channel=["email"], deliver={"to": {"email": "nope"}}
    )
    assert_error(refused, 422)
    assert "to" in refused.get_json()["errors"]["deliver"]
    assert _rows(app, config["id"]) == []

    accepted = _decide(
        client,
        tenant,
        config["id"],
        "d1",
        channel=["email"],
        deliver={"to": {"email": "ada@example.com"}},
    )
    assert accepted.status_code == 201, accepted.get_json()
    body = accepted.get_json()
    assert body["channel"] == "email" and body["delivery"]["status"] == "pending"
