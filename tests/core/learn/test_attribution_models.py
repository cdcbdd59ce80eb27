"""The built-in attribution models (plugins.attribution) and hpe_core's check of what a
model returns: pure functions, hand-computed shares."""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpe_core.learn.attribution import CreditError, Touch, check_credit
from plugins.attribution import (
    MODELS,
    first_touch,
    last_touch,
    linear,
    position_based,
    time_decay,
)

CONVERSION = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
OPTIONS = {"model": "time_decay", "window_hours": 168.0, "half_life_hours": 24.0}


def touches_at(*hours_before: float, channels: str = "email") -> list[Touch]:
    """Touches ``hours_before`` the conversion (give them oldest first)."""
    return [Touch(uuid.uuid4(), CONVERSION - dt.timedelta(hours=h), channels) for h in hours_before]


def test_last_touch_gives_everything_to_the_most_recent_decision():
    """last_touch: [0, 0, 1]; one touch gets all."""
    assert last_touch(touches_at(30, 20, 10), CONVERSION, OPTIONS) == [0.0, 0.0, 1.0]
    assert last_touch(touches_at(5), CONVERSION, OPTIONS) == [1.0]


def test_first_touch_gives_everything_to_the_earliest_decision():
    """first_touch: [1, 0, 0]."""
    assert first_touch(touches_at(30, 20, 10), CONVERSION, OPTIONS) == [1.0, 0.0, 0.0]


def test_linear_shares_equally():
    """linear: four touches get a quarter each."""
    assert linear(touches_at(40, 30, 20, 10), CONVERSION, OPTIONS) == [0.25] * 4


def test_time_decay_halves_credit_every_half_life():
    """Half-life 24 h, touches 48 h, 24 h and 0 h before: weights 1/4, 1/2, 1 → 1/7, 2/7, 4/7."""
    shares = time_decay(touches_at(48, 24, 0), CONVERSION, OPTIONS)
    assert shares == pytest.approx([1 / 7, 2 / 7, 4 / 7])


def test_time_decay_reads_the_half_life_from_the_options():
    """Half-life 12 h: touches 24 h and 0 h before weigh 1/4 and 1 → 0.2 and 0.8."""
    shares = time_decay(touches_at(24, 0), CONVERSION, {**OPTIONS, "half_life_hours": 12.0})
    assert shares == pytest.approx([0.2, 0.8])


def test_time_decay_survives_a_window_far_longer_than_the_half_life():
    """Touches 2,000 half-lives old do not underflow to a division by zero."""
    shares = time_decay(touches_at(2160, 2159), CONVERSION, {**OPTIONS, "half_life_hours": 0.1})
    assert all(math.isfinite(s) for s in shares) and sum(shares) == pytest.approx(1.0)
    assert shares[1] > shares[0]


def test_position_based_is_40_20_40():
    """Five touches: 0.4 first, 0.4 last, 0.2 split over the three between."""
    shares = position_based(touches_at(50, 40, 30, 20, 10), CONVERSION, OPTIONS)
    assert shares == pytest.approx([0.4, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.4])
    assert position_based(touches_at(30, 20, 10), CONVERSION, OPTIONS) == pytest.approx(
        [0.4, 0.2, 0.4]
    )


def test_position_based_with_one_or_two_touches():
    """One touch gets all the credit; two share it 50/50."""
    assert position_based(touches_at(3), CONVERSION, OPTIONS) == [1.0]
    assert position_based(touches_at(9, 3), CONVERSION, OPTIONS) == [0.5, 0.5]


def test_every_builtin_model_is_registered_once_by_name():
    """The five names the settings accept, each with a description."""
    assert [m.name for m in MODELS] == [
        "last_touch",
        "first_touch",
        "linear",
        "time_decay",
        "position_based",
    ]
    assert all(m.description for m in MODELS)


@given(
    hours=st.lists(st.floats(0, 2160, allow_nan=False), min_size=1, max_size=30),
    half_life=st.floats(0.1, 2160),
)
def test_builtin_models_always_give_a_valid_split(hours, half_life):
    """For any touches in a 90-day window, every built-in model passes check_credit."""
    touches = touches_at(*sorted(hours, reverse=True))
    options = {**OPTIONS, "half_life_hours": half_life}
    for model in MODELS:
        shares = check_credit(model.credit(touches, CONVERSION, options), len(touches))
        assert len(shares) == len(touches)


def test_check_credit_accepts_a_valid_split_within_rounding():
    """Shares summing to 1 within 1e-6 pass, as floats; ints are fine."""
    assert check_credit([1 / 3, 1 / 3, 1 / 3], 3) == pytest.approx([1 / 3] * 3)
    assert check_credit((0, 1), 2) == [0.0, 1.0]
    assert check_credit([0.5, 0.5 + 5e-7], 2) == [0.5, 0.5 + 5e-7]


@pytest.mark.parametrize(
    ("shares", "touches", "says"),
    [
        ([1.0], 2, "1 share(s) for 2"),
        ([0.5, 0.5, 0.0], 2, "3 share(s) for 2"),
        ([1.5, -0.5], 2, "negative"),
        ([float("nan"), 1.0], 2, "finite"),
        ([float("inf"), 0.0], 2, "finite"),
        ([0.45, 0.45], 2, "summing to"),
        ([0.0, 0.0], 2, "summing to"),
        (["0.5", "0.5"], 2, "finite number"),
        ([True, False], 2, "finite number"),
        (None, 1, "not a list"),
        ("1", 1, "not a list"),
        ({0: 1.0}, 1, "not a list"),
    ],
)
def test_check_credit_rejects_what_is_not_a_split(shares, touches, says):
    """Wrong length, negative, NaN/inf, a bad sum or a non-list is the model's fault."""
    with pytest.raises(CreditError, match=re.escape(says)):
        check_credit(shares, touches)


def test_the_worked_example_of_docs_attribution_md():
    """Touches 96, 48 and 24 h before a purchase of 100 (docs/attribution.md's table)."""
    touches = touches_at(96, 48, 24)
    expected = {
        "last_touch": [0, 0, 100],
        "first_touch": [100, 0, 0],
        "linear": [33.33, 33.33, 33.33],
        "time_decay": [7.69, 30.77, 61.54],
        "position_based": [40, 20, 40],
    }
    for model in MODELS:
        shares = model.credit(touches, CONVERSION, OPTIONS)
        assert [round(100 * s, 2) for s in shares] == expected[model.name], model.name
