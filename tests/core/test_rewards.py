"""hpe_core.rewards: from outcome events to one reward per decision (pure functions)."""

from __future__ import annotations

import pytest

from hpe_core import rewards
from hpe_core.settings import RewardSchema

DEFAULT = RewardSchema().load({})  # open 0.1, click 1.0, conversion 1.0 (a value event)
WEIGHTED = {
    "events": {"open": 0.1, "click": 1.0, "conversion": 0.01, "unsubscribe": -2.0},
    "value_events": ["conversion"],
    "wait_seconds": 86400,
    "default": 0.0,
}


def test_no_events_combine_to_zero():
    """No events: the combined reward is 0 (the default applies elsewhere, at window close)."""
    assert rewards.combine(DEFAULT, []) == 0.0


def test_stages_add_each_weight_once():
    """open → click → conversion without value adds each stage's weight once."""
    events = [("open", None), ("click", None), ("conversion", None)]
    assert rewards.combine(DEFAULT, events) == pytest.approx(0.1 + 1.0 + 1.0)


def test_repeated_single_shot_events_do_not_inflate_the_reward():
    """Three opens and two clicks weigh as one open and one click."""
    events = [("open", None)] * 3 + [("click", None)] * 2
    assert rewards.combine(DEFAULT, events) == pytest.approx(1.1)


def test_value_events_add_weight_times_value_for_every_event():
    """Two purchases of 40 and 60 at weight 0.01 add 1.0, on top of the other stages."""
    events = [("open", None), ("click", None), ("conversion", 40.0), ("conversion", 60.0)]
    assert rewards.combine(WEIGHTED, events) == pytest.approx(0.1 + 1.0 + 0.4 + 0.6)


def test_a_value_event_without_value_counts_like_any_type():
    """A conversion with no value adds its weight once."""
    events = [("conversion", None), ("conversion", None)]
    assert rewards.combine(WEIGHTED, events) == pytest.approx(0.01)


def test_unlisted_types_weigh_nothing_and_negative_weights_subtract():
    """Unknown types add 0; a negatively weighted event (unsubscribe) lowers the reward."""
    assert rewards.combine(WEIGHTED, [("bounce", None)]) == 0.0
    events = [("open", None), ("unsubscribe", None)]
    assert rewards.combine(WEIGHTED, events) == pytest.approx(0.1 - 2.0)


def test_a_value_on_a_plain_event_is_ignored():
    """A value sent with a click does not scale it: only value_events use values."""
    assert rewards.combine(WEIGHTED, [("click", 99.0)]) == 1.0


def test_engagement_needs_a_positively_weighted_event():
    """is_engaged: true when some event type has a positive weight; positive_types lists them."""
    assert rewards.is_engaged(WEIGHTED, ["open"])
    assert not rewards.is_engaged(WEIGHTED, ["unsubscribe", "bounce"])
    assert not rewards.is_engaged(WEIGHTED, [])
    assert rewards.positive_types(WEIGHTED) == ["click", "conversion", "open"]
