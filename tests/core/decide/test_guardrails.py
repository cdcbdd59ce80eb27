"""Pure checks of hpe_core.decide.guardrails: shares, affordability, budget periods, unit cost."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from hpe_core.decide.guardrails import (
    MIN_DECISIONS_FOR_SHARE,
    affordable,
    over_share,
    period_start,
    unit_cost,
)
from hpe_core.tenancy.settings_types import Action, BudgetPeriod


def test_shares_do_not_count_before_enough_decisions():
    assert over_share({"a": MIN_DECISIONS_FOR_SHARE - 1}, 0.5) == set()
    assert over_share({"a": MIN_DECISIONS_FOR_SHARE}, 0.5) == {"a"}


def test_an_action_at_exactly_the_share_is_over_it():
    assert over_share({"a": 60, "b": 40}, 0.6) == {"a"}
    assert over_share({"a": 59, "b": 41}, 0.6) == set()
    assert over_share({"a": 50, "b": 50}, 0.5) == {"a", "b"}


def test_no_cap_and_a_cap_of_one_exclude_nothing():
    assert over_share({"a": 500}, None) == set()
    assert over_share({"a": 500}, 1.0) == set()


@given(
    st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 1000), min_size=1),
    st.floats(0.01, 0.99),
)
def test_excluded_actions_are_exactly_those_at_or_over_the_share(counts, share):
    total = sum(counts.values())
    excluded = over_share(counts, share, min_decisions=1)
    for action, count in counts.items():
        assert (action in excluded) == (total >= 1 and count / total >= share)


def test_affordable_keeps_the_order_and_the_exact_fit():
    costs = {"a": 1.0, "b": 2.5, "c": 0.5}
    assert affordable(["c", "b", "a"], costs, spend=2.0, amount=3.0) == ["c", "a"]
    assert affordable(["b"], costs, spend=0.0, amount=2.5) == ["b"]
    assert affordable(["a", "b"], costs, spend=3.0, amount=3.0) == []


def test_float_rounding_does_not_refuse_an_exact_fit():
    spend = sum([0.1] * 9)  # 0.8999999999999999
    assert affordable(["a"], {"a": 0.1}, spend, 1.0) == ["a"]


def test_period_start():
    today = dt.date(2026, 3, 20)
    assert period_start(BudgetPeriod.DAY, today) == today
    assert period_start(BudgetPeriod.MONTH, today) == dt.date(2026, 3, 1)
    assert period_start(BudgetPeriod.TOTAL, today) is None


def test_unit_cost_adds_the_channel_cost():
    assert unit_cost(Action.of({"id": "a", "cost": 1.25}), "email", {"email": 0.5}) == 1.75
    assert unit_cost(Action.of({"id": "a"}), "web", {"email": 0.5}) == 0.0
    assert unit_cost(Action.of({"id": "a", "cost": None}), "email", {"email": 0.5}) == 0.5
    assert unit_cost(None, "email", {"email": 0.5}) == 0.5  # an action removed since
