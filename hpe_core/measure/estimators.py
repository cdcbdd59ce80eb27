"""Off-policy estimators: the value of a target policy from decisions another policy logged.

Pure functions over plain rows (no database, no VW), so every number can be checked by
hand. For logged decision i with eligible actions A_i, chosen action a_i, propensity p_i
(the logging policy's probability of a_i) and reward r_i, a target policy pi gives the
importance weight w_i = pi(a_i|x_i) / p_i, and:

- IPS   = (1/n) sum_i w_i r_i
- SNIPS = sum_i w_i r_i / sum_i w_i
- DR    = (1/n) sum_i [ sum_{a in A_i} pi(a|x_i) rhat(a, c_i) + w_i (r_i - rhat(a_i, c_i)) ]
- DM    = (1/n) sum_i sum_{a in A_i} pi(a|x_i) rhat(a, c_i)   (the direct method alone)

where rhat is :class:`RewardModel` (shrunk per-action and per-channel mean rewards). 95%
intervals use the normal approximation with the sample standard deviation (n - 1) of
the per-decision terms; SNIPS's uses the delta method. docs/evaluation.md has the worked
formulas.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections import defaultdict
from collections.abc import Iterable, Sequence

from hpe_core.results import ActionMean, PolicyEstimate, RewardModelSummary

#: Two-sided 95% quantile of the standard normal distribution.
Z95 = 1.959963984540054
#: Pseudo-decisions of prior in the reward model: an action (or action on a channel) seen
#: this many times is pulled halfway to the broader mean.
PRIOR_WEIGHT = 5.0


@dataclasses.dataclass(frozen=True)
class LoggedDecision:
    """One logged decision as the estimators see it.

    :param channel: the touchpoint (the reward model's second key)
    :param eligible: the eligible action ids that still exist, in the logged order
    :param action_id: the action the logging policy chose (one of ``eligible``)
    :param propensity: the logging policy's probability of ``action_id``, in (0, 1]
    :param reward: the reward the decision earned
    :param channels: when the engine chose the channel too, the channel of each
        ``eligible`` entry (an action appears once per channel); ``channel`` is the one
        chosen. None: every entry is on ``channel``
    """

    channel: str
    eligible: tuple[str, ...]
    action_id: str
    propensity: float
    reward: float
    channels: tuple[str, ...] | None = None

    @property
    def chosen(self) -> int:
        if self.channels is None:
            return self.eligible.index(self.action_id)
        return list(zip(self.eligible, self.channels, strict=True)).index(
            (self.action_id, self.channel)
        )


class RewardModel:
    """The direct-method reward model rhat(action, channel): shrunk mean rewards.

    With m the mean reward of all rows, S and N the sum and count of rewards per action
    (or per action and channel) and k = ``prior_weight``::

        rhat(a)    = (S_a + k * m) / (N_a + k)
        rhat(a, c) = (S_ac + k * rhat(a)) / (N_ac + k)

    An action never chosen gets m; an action never chosen on channel c gets rhat(a). The
    shrinkage keeps a rarely chosen action's estimate from resting on one or two rewards.
    It is fitted on the same decisions it is used to evaluate (no cross-fitting: the bias
    that adds is of order 1/n, and DR stays unbiased whatever rhat is when the
    propensities are right).
    """

    name = "shrunk_means"

    def __init__(self, rows: Sequence[LoggedDecision], prior_weight: float = PRIOR_WEIGHT):
        self.prior_weight = prior_weight
        self.n = len(rows)
        self.global_mean = _sum(r.reward for r in rows) / len(rows) if rows else 0.0
        per_action: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
        per_pair: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
        for row in rows:
            for cell in (per_action[row.action_id], per_pair[(row.action_id, row.channel)]):
                cell[0] += row.reward
                cell[1] += 1
        k = prior_weight
        self.counts = {a: int(n) for a, (_s, n) in per_action.items()}
        self.action_means = {
            a: (s + k * self.global_mean) / (n + k) for a, (s, n) in per_action.items()
        }
        self._pair_means = {
            (a, c): (s + k * self.action_means[a]) / (n + k) for (a, c), (s, n) in per_pair.items()
        }
        self._vectors: dict[tuple, tuple[float, ...]] = {}

    def predict(self, action_id: str, channel: str) -> float:
        """rhat(action, channel), falling back to rhat(action), then to the global mean."""
        found = self._pair_means.get((action_id, channel))
        if found is not None:
            return found
        return self.action_means.get(action_id, self.global_mean)

    def vector(self, channel: str, eligible: tuple[str, ...]) -> tuple[float, ...]:
        """rhat of every eligible action on a channel (cached: eligible sets repeat)."""
        key = (channel, eligible)
        found = self._vectors.get(key)
        if found is None:
            found = self._vectors[key] = tuple(self.predict(a, channel) for a in eligible)
        return found

    def row_vector(self, row: LoggedDecision) -> tuple[float, ...]:
        """rhat of every eligible entry of a logged decision: each action on the
        decision's channel, or on its own channel when the engine chose the channel."""
        if row.channels is None:
            return self.vector(row.channel, row.eligible)
        key = (row.channels, row.eligible)
        found = self._vectors.get(key)
        if found is None:
            found = self._vectors[key] = tuple(
                self.predict(a, c) for a, c in zip(row.eligible, row.channels, strict=True)
            )
        return found

    def describe(self) -> RewardModelSummary:
        """The model's parameters and per-action means, for the API response."""
        return RewardModelSummary(
            name=self.name,
            prior_weight=self.prior_weight,
            global_mean=self.global_mean if self.n else None,
            actions={
                a: ActionMean(n=self.counts[a], mean=mean) for a, mean in self.action_means.items()
            },
        )


def estimate(
    rows: Sequence[LoggedDecision],
    distributions: Sequence[Sequence[float] | None],
    reward_model: RewardModel,
) -> PolicyEstimate:
    """IPS, SNIPS, DR and DM estimates of one target policy with 95% intervals and ESS.

    :param rows: the logged decisions
    :param distributions: per row, the target policy's probabilities over that row's
        ``eligible`` (same order); ``None`` for the logging policy itself: then w_i = 1 and
        the DR direct term is rhat(a_i) (the logging policy's expected rhat, estimated by
        its own draw, because an imported decision's full distribution is unknown), so
        IPS = SNIPS = DR = the mean observed reward
    :param reward_model: rhat, usually fitted on ``rows``
    :returns: IPS, SNIPS, DR, DM, their intervals, ``n`` and ``ess``;
        ``ci_low``/``ci_high`` are DR's interval. Undefined numbers are None (never NaN):
        all None for n = 0; estimates None and ESS 0.0 when every weight is 0 (no logged
        decision chose what the target policy would, so the data say nothing about it);
        intervals None for n = 1.
    """
    if len(rows) != len(distributions):
        raise ValueError("One distribution per logged decision is needed.")
    weights, ips_terms, dr_terms, dm_terms = [], [], [], []
    for row, distribution in zip(rows, distributions, strict=True):
        chosen = row.chosen
        rhat = reward_model.row_vector(row)
        predicted = rhat[chosen]
        if distribution is None:
            weight, direct = 1.0, predicted
        else:
            if len(distribution) != len(rhat):
                raise ValueError("A distribution needs one probability per eligible action.")
            weight = distribution[chosen] / row.propensity
            direct = _sum(map(operator.mul, distribution, rhat))
        weights.append(weight)
        ips_terms.append(weight * row.reward)
        dr_terms.append(direct + weight * (row.reward - predicted))
        dm_terms.append(direct)
    return summarize(weights, ips_terms, dr_terms, dm_terms)


_NO_INTERVAL = (None, None)


def _effective_sample_size(weights: Sequence[float]) -> float | None:
    """Kish's (Σw)² / Σw², computed on weights scaled by the largest: it is scale-free, and
    tiny weights (a policy that almost never picks the logged action) would otherwise
    square to 0.0 and divide by zero."""
    largest = max(weights, default=0.0)
    if not largest > 0:
        return None
    scaled = [w / largest for w in weights]
    return _finite(_sum(scaled) ** 2 / _sum(w * w for w in scaled))


def summarize(
    weights: Sequence[float],
    ips_terms: Sequence[float],
    dr_terms: Sequence[float],
    dm_terms: Sequence[float],
) -> PolicyEstimate:
    """The estimates and intervals from per-decision terms (see :func:`estimate`)."""
    n = len(weights)
    total_weight = _sum(weights)
    if not (n and total_weight > 0):  # (also for NaN: overflowing weights leave all None)
        ess = 0.0 if n and total_weight == 0 else None
        return PolicyEstimate(
            n=n,
            ess=ess,
            ips=None,
            snips=None,
            dr=None,
            dm=None,
            ips_ci=_NO_INTERVAL,
            snips_ci=_NO_INTERVAL,
            dr_ci=_NO_INTERVAL,
            ci_low=None,
            ci_high=None,
        )
    ips, ips_ci = _mean_with_interval(ips_terms)
    dr, dr_ci = _mean_with_interval(dr_terms)
    snips, snips_ci = _snips(weights, ips_terms, total_weight)
    return PolicyEstimate(
        n=n,
        ess=_effective_sample_size(weights),
        ips=ips,
        snips=snips,
        dr=dr,
        dm=_finite(_sum(dm_terms) / n),
        ips_ci=ips_ci,
        snips_ci=snips_ci,
        dr_ci=dr_ci,
        ci_low=dr_ci[0],
        ci_high=dr_ci[1],
    )


def _mean_with_interval(terms: Sequence[float]) -> tuple[float | None, tuple]:
    n = len(terms)
    mean = _finite(_sum(terms) / n)
    if mean is None or n < 2:
        return mean, _NO_INTERVAL
    variance = _sum((t - mean) * (t - mean) for t in terms) / (n - 1)
    half = _finite(Z95 * math.sqrt(variance / n))
    if half is None:
        return mean, _NO_INTERVAL
    return mean, (mean - half, mean + half)


def _snips(
    weights: Sequence[float], ips_terms: Sequence[float], total_weight: float
) -> tuple[float | None, tuple]:
    # Delta method for a ratio of means: with z_i = w_i (r_i - SNIPS), which sum to zero,
    # se = sd(z) / (sqrt(n) * mean(w)).
    n = len(weights)
    value = _finite(_sum(ips_terms) / total_weight)
    if value is None or n < 2:
        return value, _NO_INTERVAL
    deviations = [t - w * value for w, t in zip(weights, ips_terms, strict=True)]
    variance = _sum(z * z for z in deviations) / (n - 1)
    half = _finite(Z95 * math.sqrt(variance / n) / (total_weight / n))
    if half is None:
        return value, _NO_INTERVAL
    return value, (value - half, value + half)


def _sum(values: Iterable[float]) -> float:
    # fsum: correctly rounded whatever the order of the rows. It raises where plain
    # addition would give inf or NaN; those come out as NaN, reported as None.
    try:
        return math.fsum(values)
    except (OverflowError, ValueError):
        return math.nan


def _finite(value: float) -> float | None:
    # Extreme weights (a propensity of 1e-300) can overflow: report "undefined", not inf.
    return value if math.isfinite(value) else None
