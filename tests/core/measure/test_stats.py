"""Lift statistics: hand-computed values, edge cases, and calibration by simulation."""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import asdict

import pytest

from hpe_core.measure.metrics import summarize
from hpe_core.measure.stats import (
    detectable_lift,
    incremental_roi,
    lift,
    rate,
    required_holdout,
    sample_ratio,
)


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
    summary = asdict(summarize(days))
    assert summary["decisions"] == {"treatment": 200, "holdout": 20}
    assert summary["engagements"] == {"treatment": 50, "holdout": 2}
    assert summary["engagement_rate"] == {"treatment": 0.25, "holdout": 0.1}
    assert summary["lift"] == lift(50, 200, 2, 20).as_dict()
    assert summary["reward"] == pytest.approx(52)
    assert summary["revenue"] == pytest.approx(200)
    assert summary["cost"] == pytest.approx(20)
    # Incremental: (200/200 - 0/20 revenue per decision) x 200 treatment decisions = 200,
    # on the treatment decisions' cost of 20.
    assert summary["roi_interval"]["incremental_revenue"] == pytest.approx(200)
    assert summary["roi"] == pytest.approx((200 - 20) / 20)
    empty = asdict(summarize([]))
    assert empty["roi"] is None and empty["lift"]["estimate"] is None


# --- Sample ratio mismatch -----------------------------------------------------------------


def test_srm_matches_hand_computation():
    """9100/900 against a 10% holdout: chi-square 11.11, p = 0.000858, alarm."""
    result = sample_ratio(9100, 900, 0.1)
    # expected 9000 / 1000: x = 100²/9000 + 100²/1000 = 1.1111 + 10 = 11.1111
    assert result.chi_square == pytest.approx(11.111111, abs=1e-6)
    # p = erfc(sqrt(11.1111 / 2)) = 2 (1 - Phi(3.3333)) = 0.000858
    assert result.p_value == pytest.approx(0.000858121, abs=1e-9)
    assert result.alarm is True
    assert result.observed_holdout_share == pytest.approx(0.09)
    assert result.expected_holdout_share == 0.1


def test_srm_of_an_exact_split_has_p_one_and_no_alarm():
    """Counts exactly as configured: statistic 0, p 1."""
    result = sample_ratio(900, 100, 0.1)
    assert result.chi_square == pytest.approx(0.0) and result.p_value == pytest.approx(1.0)
    assert result.alarm is False


def test_srm_just_under_and_over_the_alarm_threshold():
    """The alarm rings at p < 0.001, not before."""
    # 1000 decisions, 10% expected: a holdout of 70 gives x = 10.0, p = 0.00157 (no alarm);
    # 65 gives x = 13.61, p = 0.000225 (alarm).
    assert sample_ratio(930, 70, 0.1).p_value == pytest.approx(0.0015654, abs=1e-6)
    assert sample_ratio(930, 70, 0.1).alarm is False
    assert sample_ratio(935, 65, 0.1).alarm is True


def test_srm_without_decisions_is_undefined():
    """No decisions: nothing to test, no alarm."""
    result = sample_ratio(0, 0, 0.1)
    assert (result.chi_square, result.p_value, result.alarm) == (None, None, False)


def test_srm_p_value_is_calibrated_under_the_configured_split():
    """Assignments drawn at the configured share give p < 0.05 about 5% of the time."""
    rng = random.Random(11)
    draw = _binomial_sampler(2000, 0.2)
    low = sum(
        sample_ratio(2000 - h, h, 0.2).p_value < 0.05 for h in (draw(rng) for _ in range(2000))
    )
    assert 0.035 <= low / 2000 <= 0.065


# --- Power planner ---------------------------------------------------------------------------


def test_required_holdout_matches_the_textbook_value():
    """10% -> 15% (+50%) with equal groups needs 686 per group at alpha 0.05, power 0.8."""
    # p̄ = 0.125; 1.959964 sqrt(0.125 0.875 2) = 0.916689; 0.841621 sqrt(0.09 + 0.1275)
    # = 0.392506; (0.916689 + 0.392506)² / 0.05² = 685.597
    assert required_holdout(0.1, 0.5, 1) == pytest.approx(685.597, abs=1e-3)
    # Four treatment decisions per holdout one: p̄ = 0.14; 1.959964 sqrt(0.14 0.86 1.25)
    # = 0.760355; 0.841621 sqrt(0.09 + 0.1275 / 4) = 0.293815; (1.054170)² / 0.0025 = 444.510
    assert required_holdout(0.1, 0.5, 4) == pytest.approx(444.510, abs=1e-3)


def test_required_holdout_is_undefined_where_the_plan_is():
    """No rate, a rate of 0 or 1, no target, or a treatment rate above 1: None."""
    assert required_holdout(None, 0.5, 1) is None
    assert required_holdout(0.0, 0.5, 1) is None
    assert required_holdout(1.0, 0.5, 1) is None
    assert required_holdout(0.1, 0.0, 1) is None
    assert required_holdout(0.6, 1.0, 1) is None  # 120% engagement cannot happen


@pytest.mark.parametrize("p_h, target, ratio", [(0.1, 0.3, 3.0), (0.05, 0.5, 1.0)])
def test_the_planned_sample_reaches_80_percent_power_in_simulation(p_h, target, ratio):
    """Experiments of the planned size with the target lift as truth reject ~80% of the time."""
    n_h = math.ceil(required_holdout(p_h, target, ratio))
    n_t = round(n_h * ratio)
    rng = random.Random(5)
    draw_t = _binomial_sampler(n_t, p_h * (1 + target))
    draw_h = _binomial_sampler(n_h, p_h)
    rejected = sum(lift(draw_t(rng), n_t, draw_h(rng), n_h).p_value < 0.05 for _ in range(2000))
    assert 0.77 <= rejected / 2000 <= 0.83


def test_detectable_lift_inverts_the_plan():
    """With exactly the planned decisions, the detectable lift is the target."""
    for p_h, target, ratio in ((0.1, 0.5, 1.0), (0.03, 0.2, 9.0)):
        needed = required_holdout(p_h, target, ratio)
        assert detectable_lift(p_h, needed, ratio) == pytest.approx(target, rel=1e-6)
    assert detectable_lift(0.1, 0, 1.0) is None
    # Even 10% -> 100% needs 3.29 per group ((1.959964 sqrt(0.55 0.45 2) + 0.841621
    # sqrt(0.09))² / 0.9²): two decisions cannot detect any lift, three can.
    assert detectable_lift(0.1, 2, 1.0) is None
    assert detectable_lift(0.1, 3.3, 1.0) == pytest.approx(9.0, rel=0.05)


# --- ROI ---------------------------------------------------------------------------------------


def test_incremental_roi_matches_hand_computation():
    """Treatment revenues [20, 10, 0, 0], holdout [4, 0], cost 2: by hand."""
    result = incremental_roi(
        treatment_decisions=4,
        treatment_revenue=30,
        treatment_revenue_sq=500,
        holdout_decisions=2,
        holdout_revenue=4,
        holdout_revenue_sq=16,
        cost=2,
    )
    # m_t = 7.5, s_t² = 125 - 56.25 = 68.75; m_h = 2, s_h² = 8 - 4 = 4
    # incremental = (7.5 - 2) x 4 = 22; se = 4 sqrt(68.75/4 + 4/2) = 17.521415
    assert result.incremental_revenue == pytest.approx(22.0)
    assert result.incremental_revenue_ci_low == pytest.approx(22 - 34.341343, abs=1e-5)
    assert result.incremental_revenue_ci_high == pytest.approx(22 + 34.341343, abs=1e-5)
    # roi = (22 - 2) / 2 = 10, bounds (22 -+ 34.341343 - 2) / 2
    assert result.roi == pytest.approx(10.0)
    assert result.roi_ci_low == pytest.approx(-7.170672, abs=1e-5)
    assert result.roi_ci_high == pytest.approx(27.170672, abs=1e-5)


def test_roi_is_undefined_without_holdout_or_cost():
    """No holdout: nothing to compare with. No cost: incremental revenue but no ROI."""
    args = dict(treatment_decisions=4, treatment_revenue=30, treatment_revenue_sq=500)
    none = incremental_roi(
        **args, holdout_decisions=0, holdout_revenue=0, holdout_revenue_sq=0, cost=2
    )
    assert none.incremental_revenue is None and none.roi is None
    free = incremental_roi(
        **args, holdout_decisions=2, holdout_revenue=4, holdout_revenue_sq=16, cost=0
    )
    assert free.incremental_revenue == pytest.approx(22.0)
    assert free.roi is None and free.roi_ci_low is None


def test_incremental_revenue_interval_covers_the_truth_95_percent_of_the_time():
    """Conversions worth 40 at 6% vs 4%: the interval covers the true increment ~95%."""
    n_t, n_h, value = 3000, 1000, 40.0
    truth = (0.06 - 0.04) * value * n_t
    rng = random.Random(3)
    draw_t, draw_h = _binomial_sampler(n_t, 0.06), _binomial_sampler(n_h, 0.04)
    covered = 0
    for _ in range(2000):
        k_t, k_h = draw_t(rng), draw_h(rng)
        result = incremental_roi(
            treatment_decisions=n_t,
            treatment_revenue=k_t * value,
            treatment_revenue_sq=k_t * value**2,
            holdout_decisions=n_h,
            holdout_revenue=k_h * value,
            holdout_revenue_sq=k_h * value**2,
            cost=1.0,
        )
        covered += result.incremental_revenue_ci_low <= truth <= result.incremental_revenue_ci_high
    assert 0.93 <= covered / 2000 <= 0.97


# --- The summary's breakdowns ------------------------------------------------------------------


def _c(decisions, engagements, revenue=0.0, revenue_sq=0.0, cost=0.0) -> dict:
    return {
        "decisions": decisions,
        "engagements": engagements,
        "reward": 0.0,
        "revenue": revenue,
        "revenue_sq": revenue_sq,
        "cost": cost,
        "baseline_decisions": 0,
        "model_agreements": 0,
    }


def test_channel_slices_compare_with_their_own_holdout_and_actions_with_the_whole():
    """Per channel: the channel's holdout is the counterfactual; per action: all holdout."""
    email = {"treatment": _c(100, 20, 200, 4000, 5), "holdout": _c(50, 5, 50, 500)}
    web = {"treatment": _c(100, 10, 0, 0, 1), "holdout": _c(50, 10, 150, 4500)}
    document = {
        "variants": {"treatment": _c(200, 30, 200, 4000, 6), "holdout": _c(100, 15, 200, 5000)},
        "channels": {"email": email, "web": web},
        "actions": {"a": {"treatment": _c(200, 30, 200, 4000, 6), "holdout": _c(40, 2)}},
    }
    summary = asdict(summarize([document], holdout_percent=33.0))
    assert summary["channels"]["email"]["lift"] == lift(20, 100, 5, 50).as_dict()
    assert summary["channels"]["web"]["lift"] == lift(10, 100, 10, 50).as_dict()
    # email: (200/100 - 50/50) x 100 = 100 incremental, on a treatment cost of 5
    assert summary["channels"]["email"]["incremental_revenue"] == pytest.approx(100)
    assert summary["channels"]["email"]["roi"] == pytest.approx((100 - 5) / 5)
    assert summary["channels"]["email"]["cost"] == pytest.approx(5)
    # action a: compared with the whole holdout (200 revenue over 100), not its own 40
    assert summary["actions"]["a"]["lift"] == lift(30, 200, 15, 100).as_dict()
    assert summary["actions"]["a"]["incremental_revenue"] == pytest.approx((1 - 2) * 200)
    assert summary["actions"]["a"]["decisions"] == {"treatment": 200, "holdout": 40}
    assert summary["srm"] == sample_ratio(200, 100, 0.33).as_dict()


def test_segments_sum_over_days_and_keep_the_largest():
    """Segments add up across days; past 50 values the smallest become (other)."""
    days = [
        {"segments": {f"s{n:02d}": {"email": {"treatment": _c(60 - n, 1), "holdout": _c(1, 0)}}}}
        for n in range(52)
    ]
    days.append({"segments": {"s00": {"web": {"treatment": _c(3, 3), "holdout": _c(0, 0)}}}})
    segments = asdict(summarize(days))["segments"]
    assert len(segments) == 51
    assert segments["s00"]["email"]["decisions"] == {"treatment": 60, "holdout": 1}
    assert segments["s00"]["web"]["engagement_rate"] == {"treatment": 1.0, "holdout": None}
    assert segments["(other)"]["email"]["decisions"] == {"treatment": 10 + 9, "holdout": 2}


def test_power_block_projects_days_from_the_recent_holdout_pace():
    """days_more = ceil((required - holdout so far) / holdout decisions per day)."""
    document = {"variants": {"treatment": _c(300, 45), "holdout": _c(300, 30)}}
    power = asdict(
        summarize(
            [document],
            holdout_percent=50,
            target_lift=0.5,
            decisions_per_day=100,
            holdout_per_day=50,
        )
    )["power"]
    assert power["baseline_rate"] == pytest.approx(0.1)
    assert power["required_holdout_decisions"] == 686
    assert power["days_more"] == math.ceil((686 - 300) / 50)
    assert power["detectable_lift"] == pytest.approx(detectable_lift(0.1, 300, 1.0))
    done = asdict(summarize([document], target_lift=2.0, holdout_per_day=50))["power"]
    assert done["days_more"] == 0
    unknown = asdict(summarize([document], holdout_per_day=None))["power"]
    assert unknown["days_more"] is None and unknown["required_holdout_decisions"] == 686
