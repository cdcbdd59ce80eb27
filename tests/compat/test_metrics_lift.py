"""Personalizer traffic is HPE traffic: an application written for Personalizer, pointed at
HPE, shows up in ``GET /{id}/metrics`` with treatment, holdout and the lift between them."""

from __future__ import annotations

import random

import pytest

from tests.compat.conftest import LOOP_SETTINGS

TASTES = ("italian", "japanese")
ACTIONS = [
    {"id": "pasta", "features": [{"cuisine": "italian"}]},
    {"id": "sushi", "features": [{"cuisine": "japanese"}]},
]
LIKED = {"italian": "pasta", "japanese": "sushi"}


def _traffic(client, rng: random.Random, events: int) -> list[tuple[str, bool]]:
    """What a Personalizer application does: Rank, show, Reward 1 for a click and an
    explicit 0 otherwise. :returns: (event id, clicked) per event"""
    sent = []
    for _ in range(events):
        taste = rng.choice(TASTES)
        answer = client.rank({"contextFeatures": [{"taste": taste}], "actions": ACTIONS})
        clicked = answer["rewardActionId"] == LIKED[taste]
        client.reward(answer["eventId"], {"value": 1.0 if clicked else 0.0})
        sent.append((answer["eventId"], clicked))
    return sent


@pytest.mark.slow
def test_rank_and_reward_traffic_shows_lift_against_the_holdout(make_loop):
    """Untrained, both arms click half the time; once the model has learned from the
    first events, treatment clicks far more than the holdout's random baseline."""
    loop = make_loop({**LOOP_SETTINGS, "holdout": {"percent": 50}})
    client = loop.personalizer()
    rng = random.Random(18)
    first = _traffic(client, rng, 160)
    assert loop.learn() == 160
    second = _traffic(client, rng, 240)

    rows = {row.user_id: row for row in loop.decisions()}
    assert len(rows) == 400
    summary = loop.metrics()["summary"]
    for variant in ("treatment", "holdout"):
        sent = [clicked for event, clicked in first + second if rows[event].variant == variant]
        assert summary["decisions"][variant] == len(sent)
        # An explicit reward of 0 is not an engagement; a reward above 0 is.
        assert summary["engagements"][variant] == sum(sent)
    treatment, holdout = (summary["engagement_rate"][v] for v in ("treatment", "holdout"))
    assert summary["lift"]["estimate"] == pytest.approx(treatment / holdout - 1)
    assert summary["lift"]["estimate"] > 0.2
    assert summary["lift"]["ci_low"] > 0
    # Every logged decision kept the propensity it was served with.
    assert all(0 < row.probability <= 1 for row in rows.values())
