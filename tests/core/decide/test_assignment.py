"""hpe_core.decide.assignment: the deterministic treatment/holdout split."""

from __future__ import annotations

import math
import uuid

import pytest

from hpe_core.decide import assignment

CONFIG = uuid.UUID("8d5e7b1c-0d4e-4d0b-9a53-2f7e4c1b2a10")
USERS = [f"user-{n}" for n in range(20_000)]


def test_variant_is_stable_for_a_user():
    """The same user and configuration always land in the same variant, as str or UUID id."""
    for user in USERS[:200]:
        first = assignment.variant(CONFIG, user, 25)
        assert assignment.variant(CONFIG, user, 25) == first
        assert assignment.variant(str(CONFIG), user, 25) == first


@pytest.mark.parametrize("percent", [5, 10, 33.3, 50])
def test_holdout_share_is_within_binomial_tolerance(percent):
    """Over 20k users the holdout share is within 4 standard errors of holdout.percent."""
    share = sum(assignment.variant(CONFIG, u, percent) == "holdout" for u in USERS) / len(USERS)
    p = percent / 100
    assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / len(USERS)), share


def test_raising_the_percent_only_moves_users_into_the_holdout():
    """Every holdout user at 10% is still in the holdout at 20% and 50%."""
    users = USERS[:5000]
    previous = {u for u in users if assignment.variant(CONFIG, u, 10) == "holdout"}
    for percent in (20, 35.5, 50):
        current = {u for u in users if assignment.variant(CONFIG, u, percent) == "holdout"}
        assert previous <= current
        assert len(current) > len(previous)
        previous = current


def test_configurations_are_salted_independently():
    """Holdout membership in one configuration says little about another."""
    other = uuid.UUID("0f3a6c2e-7b1d-4e59-8c4a-5d2e1f0a9b87")
    users = USERS[:4000]
    in_first = {u for u in users if assignment.variant(CONFIG, u, 50) == "holdout"}
    in_both = {u for u in in_first if assignment.variant(other, u, 50) == "holdout"}
    # Independent: about half of one holdout is in the other's (4 sigma ~ 0.045).
    assert abs(len(in_both) / len(in_first) - 0.5) < 0.06


def test_buckets_cover_the_whole_range():
    """Buckets are in [0, 10000) and spread across it."""
    buckets = [assignment.bucket(CONFIG, u) for u in USERS[:5000]]
    assert min(buckets) >= 0 and max(buckets) < assignment.BUCKETS
    assert len({b // 1000 for b in buckets}) == 10
