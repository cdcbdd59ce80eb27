"""POST /{id}/decisions?dry_run=true: the same answer, nothing logged, nothing consumed."""

from __future__ import annotations

import sqlalchemy as sa

from hpe_core.store.models import Decision
from tests.api.conftest import assert_error
from tests.conftest import BASE
from web.extensions import app_runtime

SETTINGS = {
    "channels": ["email", "web"],
    "actions": [
        {"id": "shoes"},
        {"id": "hats", "channels": ["web"]},
        {"id": "wine", "rules": [{"key": "age", "gte": 18}]},
        {"id": "socks"},
    ],
    "guardrails": {"frequency_caps": [{"channel": "email", "max": 1, "per_hours": 24}]},
}
REQUEST = {"user_id": "ann", "channel": "email", "context": {"age": 16}}


def _decisions(app) -> int:
    with app_runtime(app).sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Decision))


def test_a_dry_run_answers_like_a_decision_and_logs_nothing(app, client, tenant, create_config):
    """decision_id is null, the answer is 200, and no decision row is written."""
    config = create_config(settings=SETTINGS)
    answer = client.post(
        f"{BASE}/{config['id']}/decisions?dry_run=true", json=REQUEST, headers=tenant.headers
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["decision_id"] is None
    assert body["action_id"] in ("shoes", "socks") and body["variant"] in ("treatment", "holdout")
    assert {r["action_id"] for r in body["ranking"]} == {"shoes", "socks"}
    assert abs(sum(r["probability"] for r in body["ranking"]) - 1) < 1e-6
    assert body["excluded"] == {
        "hats": "not offered on email (only web)",
        "wine": "its rule does not hold for this context: age >= 18",
    }
    assert _decisions(app) == 0


def test_a_dry_run_consumes_no_frequency_cap(app, client, tenant, create_config):
    """With a cap of one email a day, dry runs leave the real decision its turn."""
    config = create_config(settings=SETTINGS)
    url = f"{BASE}/{config['id']}/decisions"
    for _ in range(3):
        assert (
            client.post(f"{url}?dry_run=true", json=REQUEST, headers=tenant.headers).status_code
            == 200
        )
    real = client.post(url, json=REQUEST, headers=tenant.headers)
    assert real.status_code == 201 and real.get_json()["decision_id"]
    capped = client.post(f"{url}?dry_run=true", json=REQUEST, headers=tenant.headers).get_json()
    assert capped["decision_id"] is None and capped["reason"] == "frequency_cap"
    assert _decisions(app) == 1


def test_a_dry_run_names_the_candidates_left_out(client, tenant, create_config):
    """Actions outside the request's candidates are said to be so."""
    config = create_config(settings=SETTINGS)
    body = client.post(
        f"{BASE}/{config['id']}/decisions?dry_run=true",
        json={**REQUEST, "candidates": ["shoes"]},
        headers=tenant.headers,
    ).get_json()
    assert body["action_id"] == "shoes"
    assert body["excluded"]["socks"] == "not among the request's candidates"


def test_publishable_keys_and_deliveries_may_not_dry_run(
    client, tenant, make_tenant, create_config
):
    """A publishable key gets 403 (no consent oracle); deliver with dry_run is 422."""
    config = create_config(settings=SETTINGS)
    public = make_tenant("acme", kind="publishable")
    url = f"{BASE}/{config['id']}/decisions?dry_run=true"
    assert_error(client.post(url, json=REQUEST, headers=public.headers), 403)
    with_delivery = {**REQUEST, "deliver": {"to": {"email": "ann@example.com"}}}
    assert_error(client.post(url, json=with_delivery, headers=tenant.headers), 422)
