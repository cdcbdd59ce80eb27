"""A drift detector on the live reward stream: Page–Hinkley for a drop in the treatment's
realised reward.

When people's preferences move, a model keeps serving what it learned before, and what
it serves earns less: the treatment's reward per decision drops. Learning feeds the
detector every treatment decision the model served, in the order they were made, with
the reward it earned. The detector standardizes each reward by an exponentially weighted
mean and standard deviation of the stream so far (the reference: what the model has been
earning lately) and accumulates how far it falls below it:

    z_t = (x_t − μ_{t−1}) / σ_{t−1}
    S_t = S_{t−1} − z_t − δ
    alarm when S_t − min_{s ≤ t} S_s > λ

δ is the drop it tolerates (in standard deviations per decision; a smaller real drop
drifts S down and never alarms) and λ the evidence it needs. The decision at which S
was lowest is the estimated change point: the stream has been below its reference ever
since. Pure, and its state is a small JSON document (kept with each model version), so
the detector survives restarts and follows rollbacks.

The defaults were chosen on simulated streams (bench/adaptation.py, docs/learning.md):
no alarm in 30,000-decision stable runs of several seeds, and detection a few hundred
to ~1,500 decisions after a preference shift.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping

#: δ: the tolerated drop, in standard deviations per decision.
DELTA = 0.08
#: λ: the evidence needed, in standard deviations.
THRESHOLD = 50.0
#: The reference mean and variance forget with this half-life (decisions).
HALF_LIFE = 3000
#: No alarm before the reference has seen this many decisions (since the last reset).
MIN_DECISIONS = 1000


@dataclasses.dataclass
class Alarm:
    """A detected drop.

    :param change_at: the stream position (decisions seen since the reset) of the
        estimated change point: the first decision after the cumulative sum's minimum
    :param detected_at: the position at which the alarm went off
    :param reference_mean: the reward per decision before the change (the reference)
    :param recent_mean: the mean reward since the change point
    :param recent_decisions: decisions since the change point
    :param change_key: the key given with the value at the change point (learning gives
        each decision's time), None when no key was given
    """

    change_at: int
    detected_at: int
    reference_mean: float
    recent_mean: float
    recent_decisions: int
    change_key: str | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class PageHinkley:
    """Page–Hinkley for a drop in the mean, on standardized values.

    :param delta: δ, see the module docstring
    :param threshold: λ
    :param half_life: the reference's half-life in decisions
    :param min_decisions: decisions seen before an alarm may go off
    """

    delta: float = DELTA
    threshold: float = THRESHOLD
    half_life: int = HALF_LIFE
    min_decisions: int = MIN_DECISIONS
    seen: int = 0
    mean: float = 0.0
    variance: float = 0.0
    cumulative: float = 0.0
    minimum: float = 0.0
    minimum_at: int = 0
    #: Sum and count of the values since the cumulative sum's minimum (the recent mean).
    since_sum: float = 0.0
    since_count: int = 0
    #: The reference mean at the minimum (what the stream earned before the change).
    mean_at_minimum: float = 0.0
    #: The key of the first value after the minimum (the estimated change point).
    key_after_minimum: str | None = None

    def update(self, value: float, key: str | None = None) -> Alarm | None:
        """Add one value; an :class:`Alarm` when the drop is established (the detector
        then starts afresh), else None.

        :param key: what to call this value in an alarm's ``change_key`` (e.g. its time)
        """
        self.seen += 1
        if self.seen == 1:
            self.mean, self.variance = value, 0.0
            return None
        sd = math.sqrt(self.variance)
        if sd > 0 and self.seen > 2:
            z = (value - self.mean) / sd
            self.cumulative += -z - self.delta
            if self.cumulative < self.minimum:
                self.minimum, self.minimum_at = self.cumulative, self.seen
                self.since_sum, self.since_count = 0.0, 0
                self.mean_at_minimum = self.mean
                self.key_after_minimum = None
            else:
                if self.since_count == 0:
                    self.key_after_minimum = key
                self.since_sum += value
                self.since_count += 1
        # Exponentially weighted reference (Welford-style update with a forgetting factor).
        alpha = max(1.0 / self.seen, 1.0 - 0.5 ** (1.0 / self.half_life))
        difference = value - self.mean
        self.mean += alpha * difference
        self.variance = (1.0 - alpha) * (self.variance + alpha * difference * difference)
        if self.seen >= self.min_decisions and self.cumulative - self.minimum > self.threshold:
            alarm = Alarm(
                change_at=self.minimum_at + 1,
                detected_at=self.seen,
                reference_mean=self.mean_at_minimum,
                recent_mean=self.since_sum / self.since_count if self.since_count else 0.0,
                recent_decisions=self.since_count,
                change_key=self.key_after_minimum,
            )
            self.reset()
            return alarm
        return None

    def update_all(self, values: Iterable[float]) -> list[tuple[int, Alarm]]:
        """Feed many values; ``(index in values, alarm)`` for each alarm."""
        alarms = []
        for index, value in enumerate(values):
            alarm = self.update(value)
            if alarm is not None:
                alarms.append((index, alarm))
        return alarms

    def reset(self) -> None:
        """Start afresh (after an alarm, or after the model was retrained)."""
        defaults = PageHinkley(self.delta, self.threshold, self.half_life, self.min_decisions)
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(defaults, field.name))

    def state(self) -> dict:
        """The detector as a JSON document (kept with the model version)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: Mapping | None, **settings) -> PageHinkley:
        """The detector from :meth:`state` (a new one for None); ``settings`` (delta,
        threshold, ...) override the stored ones, so a settings change applies at once."""
        names = {field.name for field in dataclasses.fields(cls)}
        known = {k: v for k, v in (state or {}).items() if k in names}
        return cls(**{**known, **{k: v for k, v in settings.items() if v is not None}})
