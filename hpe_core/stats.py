"""Statistics for the holdout comparison (pure functions, no services)."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Lift:
    """Relative lift of treatment over holdout: ``rate_t / rate_h - 1``, with a 95% CI."""

    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None

    def as_dict(self) -> dict:
        return {
            "estimate": self.estimate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
        }


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def rate(successes: int, trials: int) -> float | None:
    return successes / trials if trials else None


def lift(
    successes_t: int, trials_t: int, successes_h: int, trials_h: int, z: float = Z_95
) -> Lift:
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
        se = math.sqrt(1 / successes_t - 1 / trials_t + 1 / successes_h - 1 / trials_h)
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
