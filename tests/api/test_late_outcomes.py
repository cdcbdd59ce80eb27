"""Late outcomes are reported apart in metrics (issue 14, defect 6).

Before: an engagement that came after its decision's reward window counted in the
metrics' engagements but not in learning, with nothing saying so (1,500 engagements
reported, a learned reward of 1,013).
"""

from __future__ import annotations

import time
import uuid

import sqlalchemy as sa

from hpe_core.learn import learning
from hpe_core.store.models import Decision
from tests.conftest import BASE
from web.extensions import app_runtime

SETTINGS = {"actions": [{"id": "a"}, {"id": "b"}], "reward": {"wait_seconds": 1}}


def test_late_engagements_and_outcomes_are_reported_apart(app, client, tenant, create_config):
    """Two decisions: one clicked in time, one only after its window (and a late click on
    the first too). engagements 2, late engagements 1, late outcomes 2; learning saw 1."""
    config_id = create_config(settings=SETTINGS)["id"]

    def decide(user):
        response = client.post(
            f"{BASE}/{config_id}/decisions",
            json={"user_id": user, "channel": "email"},
            headers=tenant.headers,
        )
        assert response.status_code == 201
        return response.get_json()["decision_id"]

    def outcome(decision_id, event_type):
        response = client.post(
            f"{BASE}/{config_id}/outcomes",
            json={"decision_id": decision_id, "type": event_type},
            headers=tenant.headers,
        )
        assert response.status_code == 202, response.get_json()
        return response.get_json()["outcomes"][0]["late"]

    on_time, late = decide("u1"), decide("u2")
    assert outcome(on_time, "click") is False
    time.sleep(1.2)  # both windows close
    assert outcome(late, "click") is True
    assert outcome(on_time, "open") is True
    with app_runtime(app).sessions() as session:
        learning.learn_all_closed(session, uuid.UUID(config_id))
        learned_engaged = session.scalar(
            sa.select(sa.func.count()).where(
                Decision.config_id == uuid.UUID(config_id), Decision.engaged.is_(True)
            )
        )
    metrics = client.get(f"{BASE}/{config_id}/metrics", headers=tenant.headers).get_json()
    engagements = sum(metrics["summary"]["engagements"].values())
    late_engagements = sum(metrics["late"]["engagements"].values())
    assert (engagements, late_engagements, learned_engaged) == (2, 1, 1)
    assert engagements - late_engagements == learned_engaged
    assert sum(metrics["late"]["outcomes"].values()) == 2
