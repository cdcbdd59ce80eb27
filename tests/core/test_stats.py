"""Lift statistics: hand-computed values, edge cases, and calibration by simulation."""

from __future__ import annotations

import bisect
import math
import random

import pytest

from hpe_core.stats import lift, rate


def test_rate_is_none_without_trials():
    """A rate over zero trials is undefined, not zero."""
    assert rate(0, 0) is None
    assert rate(3, 12) == 0.25


def test_lift_matches_hand_computed_values():
    """50/200 vs 2/20: estimate 1.5, Katz interval and pooled z-test p-value by hand."""
    result = lift(50, 200, 2, 20)
    # rates 0.25 and 0.10: 0.25 / 0.10 - 1
    assert result.estimate == pytest.approx(1.5)
    # var(log RR) = 1/50 - 1/200 + 1/2 - 1/20 = 0.465; se = 0.681909
    # log RR = ln 2.5 = 0.916291; z * se = 1.959964 * 0.681909 = 1.336518
    # low = exp(0.916291 - 1.336518) - 1 = -0.343102; high = exp(2.252809) - 1 = 8.514415
    assert result.ci_low == pytest.approx(-0.343102, abs=1e-6)
    assert result.ci_high == pytest.approx(8.514415, abs=1e-6)
    # pooled p = 52/220; z = 0.15 / sqrt(p (1-p) (1/200 + 1/20)) = 1.505484; 2 * (1 - Phi(z))
    assert result.p_value == pytest.approx(0.132200, abs=1e-6)


def test_lift_of_equal_rates_is_zero_with_p_value_one():
    """Identical rates: no lift, an interval around zero and p = 1."""
    result = lift(20, 100, 40, 200)
    assert result.estimate == pytest.approx(0.0)
    assert result.ci_low < 0 < result.ci_high
    assert result.p_value == pytest.approx(1.0)


def test_lift_interval_is_symmetric_on_the_log_scale():
    """The interval's bounds are RR * exp(-+ z se) - 1: their ratios to RR are reciprocal."""
    result = lift(30, 100, 20, 100)
    ratio = result.estimate + 1
    assert (result.ci_low + 1) / ratio == pytest.approx(ratio / (result.ci_high + 1))


def test_lift_without_holdout_decisions_is_undefined():
    """No holdout (or no treatment) decisions: every field is None."""
    for args in ((5, 10, 0, 0), (0, 0, 5, 10), (0, 0, 0, 0)):
        assert lift(*args).as_dict() == {
            "estimate": None,
            "ci_low": None,
            "ci_high": None,
            "p_value": None,
            "method": "katz-log-rr",
        }


def test_lift_with_a_zero_holdout_rate_has_no_estimate_but_a_p_value():
    """Holdout never engaged: the ratio is undefined, the z-test still answers."""
    result = lift(10, 100, 0, 100)
    assert result.estimate is None and result.ci_low is None and result.ci_high is None
    assert 0 < result.p_value < 0.01


def test_lift_with_no_treatment_engagement_is_minus_one_without_interval():
    """Treatment never engaged: lift is -100%, the log interval is undefined."""
    result = lift(0, 100, 10, 100)
    assert result.estimate == pytest.approx(-1.0)
    assert result.ci_low is None and result.ci_high is None
    assert result.p_value < 0.01


def test_lift_when_nobody_or_everybody_engaged_has_p_value_one():
    """All-zero or all-one outcomes on both sides are no evidence of a difference."""
    assert lift(0, 50, 0, 10).p_value == 1.0
    assert lift(50, 50, 10, 10).p_value == 1.0
    assert lift(50, 50, 10, 10).estimate == pytest.approx(0.0)


def _binomial_sampler(n: int, p: float):
    """An exact binomial(n, p) sampler by inverse CDF (no numpy in the runtime)."""
    cdf, total = [], 0.0
    for k in range(n + 1):
        log_pmf = (
            math.lgamma(n + 1)
            - math.lgamma(k + 1)
            - math.lgamma(n - k + 1)
            + k * math.log(p)
            + (n - k) * math.log1p(-p)
        )
        total += math.exp(log_pmf)
        cdf.append(total)
    return lambda rng: min(bisect.bisect_left(cdf, rng.random() * total), n)


@pytest.mark.parametrize(
    "p_t, p_h, n_t, n_h",
    [(0.12, 0.08, 2000, 2000), (0.05, 0.04, 5000, 1000), (0.30, 0.20, 500, 500)],
)
def test_ci_covers_the_true_lift_95_percent_of_the_time(p_t, p_h, n_t, n_h):
    """Over 2000 simulated experiments with a known truth, ~95% of intervals cover it."""
    rng = random.Random(20261128)
    draw_t, draw_h = _binomial_sampler(n_t, p_t), _binomial_sampler(n_h, p_h)
    truth = p_t / p_h - 1
    covered = 0
    for _ in range(2000):
        result = lift(draw_t(rng), n_t, draw_h(rng), n_h)
        covered += result.ci_low <= truth <= result.ci_high
    assert 0.93 <= covered / 2000 <= 0.97


def test_p_value_is_calibrated_under_no_difference():
    """With equal true rates about 5% of experiments have p < 0.05."""
    rng = random.Random(7)
    draw = _binomial_sampler(2000, 0.08)
    significant = sum(lift(draw(rng), 2000, draw(rng), 2000).p_value < 0.05 for _ in range(2000))
    assert 0.03 <= significant / 2000 <= 0.07


def test_the_sampler_has_the_right_mean():
    """The simulation's own binomial draws average n * p (the coverage test rests on them)."""
    rng = random.Random(1)
    draw = _binomial_sampler(1000, 0.1)
    mean = sum(draw(rng) for _ in range(4000)) / 4000
    assert mean == pytest.approx(100, abs=1.5)


def test_the_metrics_summary_sums_days_and_derives_rates_lift_and_roi():
    """summarize() adds the days' variant counts and derives rates, lift and ROI from them."""
    from hpe_core.metrics import summarize

    def counts(decisions, engagements, reward=0.0, revenue=0.0, cost=0.0):
        return {
            "decisions": decisions,
            "engagements": engagements,
            "reward": reward,
            "revenue": revenue,
            "cost": cost,
        }

    days = [
        {"variants": {"treatment": counts(100, 20, 20, 50, 10), "holdout": counts(10, 1, 1)}},
        {"variants": {"treatment": counts(100, 30, 30, 150, 10), "holdout": counts(10, 1, 1)}},
        {"variants": {}},  # a day without decisions
    ]
    summary = summarize(days)
    assert summary["decisions"] == {"treatment": 200, "holdout": 20}
    assert summary["engagements"] == {"treatment": 50, "holdout": 2}
    assert summary["engagement_rate"] == {"treatment": 0.25, "holdout": 0.1}
    assert summary["lift"] == lift(50, 200, 2, 20).as_dict()
    assert summary["reward"] == pytest.approx(52)
    assert summary["revenue"] == pytest.approx(200)
    assert summary["cost"] == pytest.approx(20)
    assert summary["roi"] == pytest.approx((200 - 20) / 20)
    empty = summarize([])
    assert empty["roi"] is None and empty["lift"]["estimate"] is None
