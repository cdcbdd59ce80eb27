"""hpe_core.learn.rewards: from outcome events to one reward per decision (pure functions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpe_core.learn import rewards
from hpe_core.tenancy.settings import parse_settings
from hpe_core.tenancy.settings_types import Reward

#: open 0.1, click 1.0, conversion 1.0 (a value event)
DEFAULT = parse_settings({"actions": [{"id": "a"}]}).reward
WEIGHTED = Reward(
    events={"open": 0.1, "click": 1.0, "conversion": 0.01, "unsubscribe": -2.0},
    value_events=("conversion",),
    wait_seconds=86400,
    default=0.0,
)


def _reward(block: dict) -> Reward:
    return Reward(
        events=block["events"],
        value_events=tuple(block["value_events"]),
        wait_seconds=block["wait_seconds"],
        default=block["default"],
    )


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


# --- Credit from attribution: (type, value, credit) ------------------------------------------


def test_credit_scales_a_single_shot_stage_once_by_its_largest_credit():
    """A click credited 0.25 and 0.5 (two attributed outcomes) adds 1.0 × 0.5 once."""
    events = [("click", None, 0.25), ("click", None, 0.5)]
    assert rewards.combine(WEIGHTED, events) == pytest.approx(0.5)


def test_credit_scales_each_value_event():
    """Purchases of 100 at credit 0.5 and 40 at credit 1 with weight 0.01: 0.5 + 0.4."""
    events = [("conversion", 100.0, 0.5), ("conversion", 40.0, 1.0)]
    assert rewards.combine(WEIGHTED, events) == pytest.approx(0.9)


def test_two_tuples_have_full_credit():
    """(type, value) is the same as (type, value, 1.0)."""
    plain = [("open", None), ("conversion", 40.0)]
    credited = [("open", None, 1.0), ("conversion", 40.0, 1.0)]
    assert rewards.combine(WEIGHTED, plain) == rewards.combine(WEIGHTED, credited)


def test_a_valueless_event_does_not_add_to_its_valued_type():
    """A conversion without value beside one with a value: only weight × value counts."""
    events = [("conversion", None), ("conversion", 40.0)]
    assert rewards.combine(WEIGHTED, events) == pytest.approx(0.4)
    assert rewards.combine(WEIGHTED, list(reversed(events))) == pytest.approx(0.4)


def test_engagement_needs_credit_above_zero():
    """A positively weighted type engages only with credit > 0; strings count as full credit."""
    assert rewards.is_engaged(WEIGHTED, [("click", None, 0.1)])
    assert not rewards.is_engaged(WEIGHTED, [("click", None, 0.0)])
    assert not rewards.is_engaged(WEIGHTED, [("unsubscribe", None, 1.0), ("open", None, 0.0)])
    assert rewards.is_engaged(WEIGHTED, [("open", None)])
    assert rewards.is_engaged(WEIGHTED, ["click"])


_TYPES = ["open", "click", "conversion", "unsubscribe", "bounce"]


def _events(credit_strategy):
    return st.lists(
        st.tuples(
            st.sampled_from(_TYPES),
            st.one_of(st.none(), st.floats(0, 1000, allow_nan=False)),
            credit_strategy,
        ),
        max_size=12,
    )


_NON_NEGATIVE = st.fixed_dictionaries(
    {
        "events": st.fixed_dictionaries({t: st.floats(0, 5) for t in _TYPES}),
        "value_events": st.lists(st.sampled_from(_TYPES), unique=True),
        "wait_seconds": st.just(60),
        "default": st.just(0.0),
    }
)


@given(settings=_NON_NEGATIVE, events=_events(st.floats(0, 1)))
def test_partial_credit_never_earns_more_than_full_credit(settings, events):
    """With weights and values >= 0, credits in [0, 1] give at most the full-credit reward
    and at least 0."""
    full = [(t, v, 1.0) for t, v, _ in events]
    reward = _reward(settings)
    partial = rewards.combine(reward, events)
    assert 0.0 <= partial <= rewards.combine(reward, full) + 1e-9


@given(
    settings=_NON_NEGATIVE,
    events=_events(st.floats(0, 1)),
    seed=st.randoms(use_true_random=False),
)
def test_combine_and_engagement_ignore_the_order_of_events(settings, events, seed):
    """Shuffling a decision's events changes neither its reward nor whether it engaged."""
    settings["events"]["unsubscribe"] = -2.0  # a negative weight too
    reward = _reward(settings)
    shuffled = list(events)
    seed.shuffle(shuffled)
    assert rewards.combine(reward, shuffled) == pytest.approx(rewards.combine(reward, events))
    assert rewards.is_engaged(reward, shuffled) == rewards.is_engaged(reward, events)


@given(settings=_NON_NEGATIVE, events=_events(st.just(1.0)))
def test_zero_credit_everywhere_earns_nothing(settings, events):
    """The same events with credit 0 add nothing and never engage."""
    zero = [(t, v, 0.0) for t, v, _ in events]
    reward = _reward(settings)
    assert rewards.combine(reward, zero) == 0.0
    assert not rewards.is_engaged(reward, zero)
