"""Statistics for the holdout comparison (pure functions, no services).

- :func:`lift`: relative lift of two engagement rates, Katz log risk-ratio interval and a
  pooled two-proportion z-test p-value.
- :func:`sample_ratio`: the sample-ratio-mismatch check (chi-square goodness of fit).
- :func:`required_holdout` / :func:`detectable_lift`: the power planner.
- :func:`incremental_roi`: incremental revenue over the holdout and ROI, with intervals.

Each returns None for what the data cannot define (no holdout, a zero rate...), never a
made-up number. docs/measurement.md gives every formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

# The lift and the sample-ratio check are results the recommendation rules read too:
# their types live with the other results, in hpe_core.results.
from hpe_core.results import Lift, SampleRatio

Z_95 = 1.959963984540054
#: p below this raises the sample-ratio-mismatch alarm (a strict threshold: the check runs
#: every few minutes, so a looser one would cry wolf).
SRM_ALARM_P = 0.001


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def rate(successes: float, trials: float) -> float | None:
    return successes / trials if trials else None


def lift(successes_t: int, trials_t: int, successes_h: int, trials_h: int, z: float = Z_95) -> Lift:
    """Lift of two engagement rates with a CI for their ratio and a two-sided p-value.

    The interval is the delta-method (Katz) interval on the log risk ratio,
    ``var(log RR) = 1/x_t - 1/n_t + 1/x_h - 1/n_h``, mapped back by ``exp`` and minus one;
    the p-value is the pooled two-proportion z-test. Undefined quantities are None (no
    holdout decisions, or no engagement on one side for the interval).
    """
    if not trials_t or not trials_h:
        return Lift(None, None, None, None)
    rate_t, rate_h = successes_t / trials_t, successes_h / trials_h
    estimate = rate_t / rate_h - 1 if rate_h > 0 else None
    ci_low = ci_high = None
    if successes_t > 0 and successes_h > 0:
        se = math.sqrt(max(0.0, 1 / successes_t - 1 / trials_t + 1 / successes_h - 1 / trials_h))
        log_ratio = math.log(rate_t / rate_h)
        ci_low = math.exp(log_ratio - z * se) - 1
        ci_high = math.exp(log_ratio + z * se) - 1
    pooled = (successes_t + successes_h) / (trials_t + trials_h)
    variance = pooled * (1 - pooled) * (1 / trials_t + 1 / trials_h)
    p_value = None
    if variance > 0:
        p_value = 2 * _normal_sf(abs(rate_t - rate_h) / math.sqrt(variance))
    elif successes_t + successes_h in (0, trials_t + trials_h):
        p_value = 1.0  # both sides all-or-nothing alike: no evidence of a difference
    return Lift(estimate, ci_low, ci_high, p_value)


# --- Sample ratio mismatch -----------------------------------------------------------------


def sample_ratio(treatment: int, holdout: int, expected_holdout_share: float) -> SampleRatio:
    """Chi-square goodness of fit of ``(treatment, holdout)`` against the expected split.

    ``x = Σ (observed - expected)² / expected`` over the two cells, 1 degree of freedom, so
    ``p = erfc(sqrt(x / 2))``. The alarm rings at ``p < 0.001``: assignment, logging or a
    guardrail treats the two groups differently, and lift cannot be trusted until fixed.

    :param expected_holdout_share: the configured ``holdout.percent / 100``, in (0, 1)
    """
    total = treatment + holdout
    if total <= 0 or not 0 < expected_holdout_share < 1:
        return SampleRatio(expected_holdout_share, None, None, None, False)
    expected_h = total * expected_holdout_share
    expected_t = total - expected_h
    chi_square = (holdout - expected_h) ** 2 / expected_h + (
        treatment - expected_t
    ) ** 2 / expected_t
    p_value = math.erfc(math.sqrt(chi_square / 2))
    return SampleRatio(
        expected_holdout_share, holdout / total, chi_square, p_value, p_value < SRM_ALARM_P
    )


# --- Power planner ---------------------------------------------------------------------------


def _z(probability: float) -> float:
    return NormalDist().inv_cdf(probability)


def required_holdout(
    baseline_rate: float | None,
    target_lift: float,
    ratio: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float | None:
    """Holdout decisions needed to detect a relative lift with a two-sided z-test.

    With ``p_h`` the baseline rate, ``p_t = p_h (1 + target_lift)``, ``k`` treatment
    decisions per holdout decision and ``p̄ = (p_h + k p_t) / (1 + k)``::

        n_h = (z_{1-α/2} sqrt(p̄ (1-p̄) (1 + 1/k)) + z_{power} sqrt(p_h (1-p_h) + p_t (1-p_t) / k))²
              / (p_t - p_h)²

    (the normal-approximation formula of the pooled z-test the p-value uses; n_t = k n_h).

    :returns: a fractional count (round up), or None when undefined: no baseline rate,
        a rate of 0 or 1, a target of 0, or ``p_t`` above 1
    """
    if baseline_rate is None or not 0 < baseline_rate < 1 or target_lift <= 0 or ratio <= 0:
        return None
    p_h = baseline_rate
    p_t = p_h * (1 + target_lift)
    if p_t > 1:
        return None
    p_bar = (p_h + ratio * p_t) / (1 + ratio)
    spread = _z(1 - alpha / 2) * math.sqrt(p_bar * (1 - p_bar) * (1 + 1 / ratio)) + _z(
        power
    ) * math.sqrt(p_h * (1 - p_h) + p_t * (1 - p_t) / ratio)
    return spread**2 / (p_t - p_h) ** 2


def detectable_lift(
    baseline_rate: float | None,
    holdout_decisions: int,
    ratio: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float | None:
    """The smallest positive relative lift detectable with ``holdout_decisions`` today.

    Inverts :func:`required_holdout` by bisection on the lift (the requirement falls as
    the lift grows). None when undefined, or when no lift up to a 100% treatment rate is
    detectable with so few decisions.
    """
    if baseline_rate is None or not 0 < baseline_rate < 1 or holdout_decisions <= 0:
        return None
    if ratio <= 0:
        return None
    low, high = 0.0, 1 / baseline_rate - 1  # p_t from p_h up to 1
    needed_at_high = required_holdout(baseline_rate, high, ratio, alpha=alpha, power=power)
    if needed_at_high is None or needed_at_high > holdout_decisions:
        return None
    for _ in range(100):
        middle = (low + high) / 2
        needed = required_holdout(baseline_rate, middle, ratio, alpha=alpha, power=power)
        if needed is not None and needed <= holdout_decisions:
            high = middle
        else:
            low = middle
        if high - low < 1e-9:
            break
    return high


# --- ROI ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Roi:
    """Incremental revenue of treatment over its counterfactual, and ROI on its cost."""

    incremental_revenue: float | None
    incremental_revenue_ci_low: float | None
    incremental_revenue_ci_high: float | None
    cost: float
    roi: float | None
    roi_ci_low: float | None
    roi_ci_high: float | None


def _mean_and_variance(total: float, total_sq: float, n: int) -> tuple[float, float]:
    mean = total / n
    # Rounding can leave a hair below zero when every decision earned the same.
    return mean, max(0.0, total_sq / n - mean * mean)


def incremental_roi(
    *,
    treatment_decisions: int,
    treatment_revenue: float,
    treatment_revenue_sq: float,
    holdout_decisions: int,
    holdout_revenue: float,
    holdout_revenue_sq: float,
    cost: float,
    z: float = Z_95,
) -> Roi:
    """Incremental revenue and ROI from per-decision revenue means and variances.

    Per group ``m = revenue / n`` and ``s² = revenue_sq / n - m²``; then
    ``incremental = (m_t - m_h) n_t`` with ``se = n_t sqrt(s_t²/n_t + s_h²/n_h)``, its
    interval ``incremental ± z se``, and ``roi = (incremental - cost) / cost`` with the
    interval's bounds mapped the same way.

    :param cost: what the treatment decisions cost (the ROI's denominator)
    :returns: None fields where undefined (no treatment or no holdout decisions; ROI also
        when the cost is 0)
    """
    if treatment_decisions <= 0 or holdout_decisions <= 0:
        return Roi(None, None, None, cost, None, None, None)
    m_t, s2_t = _mean_and_variance(treatment_revenue, treatment_revenue_sq, treatment_decisions)
    m_h, s2_h = _mean_and_variance(holdout_revenue, holdout_revenue_sq, holdout_decisions)
    n_t = treatment_decisions
    incremental = (m_t - m_h) * n_t
    se = n_t * math.sqrt(s2_t / n_t + s2_h / holdout_decisions)
    low, high = incremental - z * se, incremental + z * se
    if cost <= 0:
        return Roi(incremental, low, high, cost, None, None, None)
    return Roi(
        incremental,
        low,
        high,
        cost,
        (incremental - cost) / cost,
        (low - cost) / cost,
        (high - cost) / cost,
    )
