"""What the measure stage answers, as frozen dataclasses: the metrics summary
(``GET /{id}/metrics``) and the off-policy evaluation (``GET /{id}/evaluation``).

Not a loop stage: measure builds these (:mod:`hpe_core.measure.metrics`,
:mod:`hpe_core.measure.evaluation`) and recommend, the stage below it, reads them (the
rules and the circuit breaker), so they sit under both and import no stage. Data only:
the arithmetic is in :mod:`hpe_core.measure.stats` and :mod:`hpe_core.measure.estimators`.

Each field is named as the API shows it, so the response schemas (``web/api/schemas.py``,
``web/api/evaluation.py``) dump these objects as they are, and ``dataclasses.asdict`` of
a summary is the ``summary`` block of the JSON answer. Undefined numbers are None, never
NaN. docs/measurement.md and docs/evaluation.md explain every field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
import uuid
from collections.abc import Mapping
from typing import Generic, TypeVar

from hpe_core.store.vocabulary import Variant

T = TypeVar("T")
R = TypeVar("R")

#: The lift interval's method, reported with every lift (``lift.method``).
LIFT_METHOD = "katz-log-rr"
#: The segment buckets of the reports: no value for the segment key in the context, and
#: the values beyond the largest ones kept (``day_counts.MAX_SEGMENTS``).
NO_SEGMENT = "(none)"
OTHER_SEGMENTS = "(other)"


@dataclasses.dataclass(frozen=True, slots=True)
class PerVariant(Generic[T]):
    """One number for each arm of the experiment."""

    treatment: T
    holdout: T

    def of(self, variant: Variant) -> T:
        """The number of one arm."""
        return self.holdout if variant is Variant.HOLDOUT else self.treatment


# --- Statistics -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Lift:
    """Relative lift of treatment over holdout: ``rate_t / rate_h - 1``, with a 95% CI."""

    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    method: str = LIFT_METHOD

    def as_dict(self) -> dict:
        """The lift as evidence is stored (a recommendation's, an activity's)."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class SampleRatio:
    """Whether the treatment/holdout split matches the configured holdout share."""

    expected_holdout_share: float
    observed_holdout_share: float | None
    chi_square: float | None
    p_value: float | None
    alarm: bool

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# --- The metrics summary ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Comparison:
    """Treatment against holdout: decisions, engagements, engagement rates and the lift.

    A segment's slice is exactly this; a channel's or an action's (:class:`Slice`) and
    the whole summary (:class:`Summary`) add revenue, cost and ROI.
    """

    decisions: PerVariant[int]
    engagements: PerVariant[int]
    engagement_rate: PerVariant[float | None]
    lift: Lift

    def counts(self, variant: Variant) -> tuple[int, int]:
        """``(engagements, decisions)`` of one arm: what the two-proportion tests take."""
        return self.engagements.of(variant), self.decisions.of(variant)


@dataclasses.dataclass(frozen=True, slots=True)
class Slice(Comparison):
    """One channel or action, compared with its counterfactual holdout (the channel's own
    holdout; for an action, the whole holdout)."""

    #: Revenue and cost of treatment and holdout decisions together.
    revenue: float
    cost: float
    #: What the treatment decisions cost: the ROI's base.
    treatment_cost: float
    incremental_revenue: float | None
    incremental_revenue_ci_low: float | None
    incremental_revenue_ci_high: float | None
    roi: float | None
    roi_ci_low: float | None
    roi_ci_high: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class RoiInterval:
    """The summary's incremental revenue and ROI with their 95% intervals."""

    incremental_revenue: float | None
    incremental_revenue_ci_low: float | None
    incremental_revenue_ci_high: float | None
    cost: float
    ci_low: float | None
    ci_high: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class Power:
    """The power planner: how long until the holdout can show ``target_lift``."""

    target_lift: float
    baseline_rate: float | None
    alpha: float
    power: float
    decisions_per_day: float | None
    holdout_decisions_per_day: float | None
    required_holdout_decisions: int | None
    holdout_decisions: int
    #: Days until enough holdout decisions at the recent pace (0: enough already).
    days_more: int | None
    detectable_lift: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class OutcomeCount:
    """Outcomes of one type per arm (attributed ones count their credit share)."""

    treatment: float
    holdout: float
    #: Its weight in ``reward.events``; None: not listed, so it weighs nothing.
    weight: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class Apprentice:
    """How often the model's top choice matched what the baseline served."""

    baseline_decisions: int
    model_agreements: int
    agreement_rate: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class Summary(Comparison):
    """The metrics ``summary``: the live experiment over a range of days."""

    revenue: float
    cost: float
    reward: float
    roi: float | None
    roi_interval: RoiInterval
    srm: SampleRatio
    power: Power
    channels: Mapping[str, Slice]
    actions: Mapping[str, Slice]
    #: Segment value -> channel -> slice.
    segments: Mapping[str, Mapping[str, Comparison]]
    outcomes: Mapping[str, OutcomeCount]
    apprentice: Apprentice


# --- The off-policy evaluation ------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class PolicyEstimate:
    """One target policy's estimated reward per decision (docs/evaluation.md).

    ``ci_low``/``ci_high`` are DR's interval; each ``*_ci`` is ``(low, high)``.
    """

    n: int
    ess: float | None
    ips: float | None
    snips: float | None
    dr: float | None
    dm: float | None
    ips_ci: tuple[float | None, float | None]
    snips_ci: tuple[float | None, float | None]
    dr_ci: tuple[float | None, float | None]
    ci_low: float | None
    ci_high: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class ActionMean:
    n: int
    mean: float


@dataclasses.dataclass(frozen=True, slots=True)
class RewardModelSummary:
    """The direct method's reward model: its parameters and per-action means."""

    name: str
    prior_weight: float
    global_mean: float | None
    actions: Mapping[str, ActionMean]


@dataclasses.dataclass(frozen=True, slots=True)
class DateRange:
    date_from: dt.date
    date_to: dt.date


@dataclasses.dataclass(frozen=True, slots=True)
class Evaluation:
    """The off-policy evaluation of one configuration over a range of days.

    :param model_version: the model the ``model`` policies were scored with (None: not
        trained yet, or trained with other exploration settings)
    :param skipped: decisions left out because their action was removed since
    :param available: when the range holds nothing to evaluate, the dates that do
    :param hint: why ``n`` is 0 and what to do, in words (None when ``n > 0``)
    :param policies: policy name -> estimate, in the order of the policies asked for
    """

    config_id: uuid.UUID
    date_from: dt.date
    date_to: dt.date
    model_version: int | None
    n: int
    skipped: int
    available: DateRange | None
    hint: str | None
    reward_model: RewardModelSummary
    policies: Mapping[str, PolicyEstimate]


@dataclasses.dataclass(frozen=True, slots=True)
class DriftNotice:
    """The last drop in the treatment's reward the learner found, and its retrain (the
    ``model.drift_detected`` activity, docs/learning.md).

    :param version: the model version the retrain saved
    :param change_at: the estimated change point (the first decision after it)
    :param detected_at: when the learn run found it
    :param reference_reward: reward per decision the model earned before the change
    :param recent_reward: reward per decision since the change point
    :param recent_decisions: model-served decisions since the change point
    :param retrained_examples: logged decisions the new model learned
    """

    version: int
    change_at: dt.datetime
    detected_at: dt.datetime
    reference_reward: float
    recent_reward: float
    recent_decisions: int
    retrained_examples: int


@dataclasses.dataclass(frozen=True, slots=True)
class TuningCandidate:
    """One learning setting replayed on the logged decisions (docs/learning.md).

    :param estimate: estimated reward per decision (doubly robust, progressive replay)
    :param gain: estimate minus the current settings' (paired over the same decisions)
    :param gain_ci: its Bonferroni-corrected 95% interval
    """

    learning_rate: float
    power_t: float
    estimate: float
    gain: float
    gain_ci: tuple[float, float]

    @property
    def settings(self) -> dict:
        """The ``exploration`` keys it sets."""
        return {"learning_rate": self.learning_rate, "power_t": self.power_t}


@dataclasses.dataclass(frozen=True, slots=True)
class TuningResult:
    """An evaluation of candidate learning settings (the ``model.tuning_evaluated``
    activity).

    :param n: decisions replayed
    :param current: the current settings' row (also first among ``candidates``)
    :param best: the best candidate whose gain interval is wholly above 0, else None
    :param z: the normal quantile of the corrected intervals
    """

    evaluated_at: dt.datetime
    n: int
    current: TuningCandidate
    candidates: tuple[TuningCandidate, ...]
    best: TuningCandidate | None
    z: float

    def as_dict(self) -> dict:
        """As the activity stores it (``current`` is the settings compared against)."""
        return {
            "evaluated_at": self.evaluated_at.isoformat(),
            "n": self.n,
            "z": self.z,
            "current": self.current.settings,
            "candidates": [dataclasses.asdict(row) for row in self.candidates],
            "best": None if self.best is None else dataclasses.asdict(self.best),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> TuningResult:
        rows = tuple(_candidate(row) for row in data["candidates"])
        return cls(
            evaluated_at=dt.datetime.fromisoformat(data["evaluated_at"]),
            n=int(data["n"]),
            current=rows[0],
            candidates=rows,
            best=None if data.get("best") is None else _candidate(data["best"]),
            z=float(data["z"]),
        )


def _candidate(row: Mapping) -> TuningCandidate:
    low, high = row["gain_ci"]
    return TuningCandidate(
        learning_rate=float(row["learning_rate"]),
        power_t=float(row["power_t"]),
        estimate=float(row["estimate"]),
        gain=float(row["gain"]),
        gain_ci=(float(low), float(high)),
    )


# --- Reading an answer back ------------------------------------------------------------------


def read_answer(cls: type[R], answer: Mapping) -> R:
    """One block of an API answer (JSON) read back into its class, for a client that holds
    the JSON rather than the objects (``hpe simulate`` with ``--url``).

    The answer names every field as the class does (a ``[low, high]`` list is read as a
    tuple; nested blocks into their classes).

    :raises KeyError: a field is missing (an answer of another shape)
    """
    hints = typing.get_type_hints(cls)
    return cls(
        **{
            field.name: _read_value(hints[field.name], answer[field.name])
            for field in dataclasses.fields(cls)
        }
    )


def _read_value(hint, value):
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):  # X | None
        return _read_value(next(arg for arg in args if arg is not type(None)), value)
    if dataclasses.is_dataclass(origin or hint):
        return read_answer(origin or hint, value)
    if origin is Mapping:
        return {key: _read_value(args[1], item) for key, item in value.items()}
    if origin is tuple:
        return tuple(value)
    return value
