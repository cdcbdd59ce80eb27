"""A configuration's settings as frozen, typed objects.

:func:`hpe_core.tenancy.settings.validate_settings` checks a document and fills in its
defaults; that document is what is stored and what the API shows. Code that *reads*
settings reads these objects instead (``settings.reward.wait_seconds``, not
``settings["reward"]["wait_seconds"]``): a misspelt attribute fails loudly, the type
checker knows every field, and nobody re-parses a block with ``.get(...) or {}``.

:func:`hpe_core.tenancy.configs.settings_of` reads them from a stored configuration,
once per settings version. The enums here are the closed sets of values the schema
accepts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class AutomationLevel(StrEnum):
    #: Everyone gets the baseline; the model learns from it and reports what it would do.
    MANUAL = "manual"
    #: The model serves treatment; recommendations wait for a person.
    ASSISTED = "assisted"
    #: The engine also applies recommendations inside the guardrails.
    AUTONOMOUS = "autonomous"


class ExplorationAlgorithm(StrEnum):
    SQUARECB = "squarecb"
    EPSILON = "epsilon"
    BAG = "bag"
    COVER = "cover"


class Kpi(StrEnum):
    ENGAGEMENT_RATE = "engagement_rate"
    CONVERSION_RATE = "conversion_rate"
    REVENUE_PER_DECISION = "revenue_per_decision"


class BudgetPeriod(StrEnum):
    DAY = "day"
    MONTH = "month"
    TOTAL = "total"


class RewardAggregation(StrEnum):
    """How the Personalizer routes combine several rewards for one event."""

    #: The first reward counts (Personalizer's default).
    EARLIEST = "earliest"
    #: Every reward adds up.
    SUM = "sum"


@dataclasses.dataclass(frozen=True, slots=True)
class ActionRule:
    """``{"key": "country", "in": ["DE", "AT"]}``: exactly one operator, or a range."""

    key: str
    in_: tuple | None = None
    not_in: tuple | None = None
    gte: Any = None
    lte: Any = None
    exists: bool | None = None

    @classmethod
    def of(cls, document: Mapping) -> ActionRule:
        return cls(
            key=document["key"],
            in_=_tuple_or_none(document.get("in")),
            not_in=_tuple_or_none(document.get("not_in")),
            gte=document.get("gte"),
            lte=document.get("lte"),
            exists=document.get("exists"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Action:
    """One offer. ``features`` feed the model, ``content`` goes to the channel.

    :param document: the action as stored (the decision answer's ``action``)
    """

    id: str
    channels: tuple[str, ...] | None
    features: Mapping[str, Any]
    content: Mapping[str, Any]
    cost: float
    rules: tuple[ActionRule, ...]
    document: Mapping[str, Any] = dataclasses.field(repr=False, compare=False)

    @classmethod
    def of(cls, document: Mapping) -> Action:
        return cls(
            id=document["id"],
            channels=_tuple_or_none(document.get("channels")),
            features=document.get("features") or {},
            content=document.get("content") or {},
            cost=float(document.get("cost") or 0.0),
            rules=tuple(ActionRule.of(rule) for rule in document.get("rules") or ()),
            document=document,
        )

    def offered_on(self, channel: str) -> bool:
        """True when this action may be shown on ``channel``.

        No list, or an empty one, means every channel: the schema accepts ``[]`` and the
        engine has always read it that way.
        """
        return not self.channels or channel in self.channels


@dataclasses.dataclass(frozen=True, slots=True)
class Reward:
    #: Event type -> weight; a decision is engaged when an outcome's weight is positive.
    events: Mapping[str, float]
    #: Event types whose reward is weight x the outcome's value.
    value_events: tuple[str, ...]
    wait_seconds: int
    default: float

    def weight(self, event_type: str) -> float | None:
        """The event type's weight, or None when ``events`` does not list it."""
        return self.events.get(event_type)


@dataclasses.dataclass(frozen=True, slots=True)
class Exploration:
    algorithm: ExplorationAlgorithm
    epsilon: float
    gamma_scale: float
    bag_size: int
    cover_size: int
    learning_rate: float
    power_t: float


@dataclasses.dataclass(frozen=True, slots=True)
class Holdout:
    percent: float
    #: None: the baseline is uniform random over the eligible actions; else this action.
    baseline_action: str | None

    @property
    def baseline(self) -> str | dict:
        """The baseline as the settings document spells it (``"random"`` or ``{action_id}``)."""
        return "random" if self.baseline_action is None else {"action_id": self.baseline_action}


@dataclasses.dataclass(frozen=True, slots=True)
class FrequencyCap:
    channel: str
    max: int
    per_hours: float


@dataclasses.dataclass(frozen=True, slots=True)
class Budget:
    amount: float
    period: BudgetPeriod


@dataclasses.dataclass(frozen=True, slots=True)
class CircuitBreaker:
    enabled: bool
    alpha: float
    min_decisions: int
    window_days: int


@dataclasses.dataclass(frozen=True, slots=True)
class ChannelExclusion:
    """No decision on ``channel`` for a context whose ``key`` holds one of ``values``."""

    channel: str
    key: str
    values: tuple


@dataclasses.dataclass(frozen=True, slots=True)
class Guardrails:
    frequency_caps: tuple[FrequencyCap, ...]
    max_action_share: float | None
    budget: Budget | None
    circuit_breaker: CircuitBreaker
    channel_exclusions: tuple[ChannelExclusion, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Attribution:
    model: str
    window_hours: float
    half_life_hours: float


@dataclasses.dataclass(frozen=True, slots=True)
class Goals:
    kpi: Kpi
    target_lift: float
    #: The context key whose value is the user's segment (breakdowns, exclusions).
    segment_key: str


@dataclasses.dataclass(frozen=True, slots=True)
class Campaign:
    external_id: str | None
    source: str | None
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class QuietHours:
    start: str
    end: str
    timezone_context_key: str


@dataclasses.dataclass(frozen=True, slots=True)
class Schedule:
    quiet_hours: QuietHours | None


@dataclasses.dataclass(frozen=True, slots=True)
class Personalizer:
    """What the Azure Personalizer-compatible routes do with the configuration
    (docs/personalizer.md)."""

    #: Rank adds the action ids the configuration does not list (with their features).
    dynamic_actions: bool
    reward_aggregation: RewardAggregation


#: ``learning`` defaults (the schema's too): chosen by measurement in bench/adaptation.py
#: (docs/learning.md, "Keeping up with change").
DRIFT_DELTA = 0.08
DRIFT_THRESHOLD = 50.0
DRIFT_MIN_DECISIONS = 1000
RETRAIN_MAX_DECISIONS = 100_000
TRIAL_SHARE = 0.1
TRIAL_DECISIONS = 600
TUNING_EVERY_HOURS = 24.0
TUNING_MIN_DECISIONS = 2000
TUNING_MAX_DECISIONS = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class Drift:
    """The drift detector on the treatment's reward (:mod:`hpe_core.learn.drift`)."""

    #: False: no detection, no retraining on a drop.
    enabled: bool
    #: δ: the drop tolerated, in standard deviations of the reward per decision.
    delta: float
    #: λ: the evidence needed before reacting, in standard deviations.
    threshold: float
    #: Model-served decisions learned (since the last retrain) before it may react.
    min_decisions: int


@dataclasses.dataclass(frozen=True, slots=True)
class NewActions:
    """The trial an action added to a live configuration gets."""

    #: Share of treatment decisions given to the actions on trial (split between them).
    trial_share: float
    #: An action is on trial until the model has learned this many of its decisions.
    trial_decisions: int


@dataclasses.dataclass(frozen=True, slots=True)
class Tuning:
    """Self-tuning: candidate learning settings evaluated on the logged decisions."""

    enabled: bool
    #: Hours between two evaluations of the candidates.
    every_hours: float
    #: Learned decisions needed before candidates are evaluated.
    min_decisions: int
    #: The most recent learned decisions replayed for each candidate.
    max_decisions: int


@dataclasses.dataclass(frozen=True, slots=True)
class Learning:
    """How the model keeps up with change (docs/learning.md)."""

    drift: Drift
    #: A retrain (after drift, or when the exploration settings change) replays at most
    #: this many of the most recent logged decisions.
    retrain_max_decisions: int
    new_actions: NewActions
    tuning: Tuning


@dataclasses.dataclass(frozen=True, slots=True)
class PublishableKeys:
    """What a publishable key (public, in web pages) may do with the configuration."""

    #: False: every call needs a secret key.
    allowed: bool
    #: The client-side channels, the only ones a publishable key decides on.
    channels: tuple[str, ...]
    #: The event types a publishable key may report, with an outcome token and no value.
    outcome_events: tuple[str, ...]
    #: Seconds a decision's outcome token stays valid.
    token_seconds: int


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """A configuration's full, validated settings.

    :param document: the settings document these were read from (stored, shown by the API)
    """

    channels: tuple[str, ...]
    actions: tuple[Action, ...]
    reward: Reward
    exploration: Exploration
    holdout: Holdout
    guardrails: Guardrails
    automation: AutomationLevel
    attribution: Attribution
    goals: Goals
    campaign: Campaign
    schedule: Schedule
    personalizer: Personalizer
    publishable_keys: PublishableKeys
    learning: Learning
    document: Mapping[str, Any] = dataclasses.field(repr=False, compare=False)
    actions_by_id: Mapping[str, Action] = dataclasses.field(repr=False, compare=False)

    @classmethod
    def of(cls, document: Mapping) -> Settings:
        """Read a *validated* document (every block present, defaults filled in).

        Use :func:`hpe_core.tenancy.settings.validate_settings` or :func:`settings_of`
        to get one; this reads keys, it does not check them.
        """
        actions = tuple(Action.of(action) for action in document["actions"])
        return cls(
            channels=tuple(document["channels"]),
            actions=actions,
            reward=_reward(document["reward"]),
            exploration=_exploration(document["exploration"]),
            holdout=_holdout(document["holdout"]),
            guardrails=_guardrails(document["guardrails"]),
            automation=AutomationLevel(document["automation"]),
            attribution=Attribution(**document["attribution"]),
            goals=Goals(
                kpi=Kpi(document["goals"]["kpi"]),
                target_lift=document["goals"]["target_lift"],
                segment_key=document["goals"]["segment_key"],
            ),
            campaign=_campaign(document["campaign"]),
            schedule=_schedule(document["schedule"]),
            personalizer=_personalizer(document.get("personalizer") or {}),
            publishable_keys=_publishable_keys(document.get("publishable_keys") or {}),
            learning=_learning(document.get("learning") or {}),
            document=document,
            actions_by_id={action.id: action for action in actions},
        )

    @property
    def action_ids(self) -> list[str]:
        return [action.id for action in self.actions]


def _reward(block: Mapping) -> Reward:
    return Reward(
        events=dict(block["events"]),
        value_events=tuple(block["value_events"]),
        wait_seconds=int(block["wait_seconds"]),
        default=float(block["default"]),
    )


def _exploration(block: Mapping) -> Exploration:
    return Exploration(**{**block, "algorithm": ExplorationAlgorithm(block["algorithm"])})


def _holdout(block: Mapping) -> Holdout:
    baseline = block["baseline"]
    return Holdout(
        percent=float(block["percent"]),
        baseline_action=baseline["action_id"] if isinstance(baseline, Mapping) else None,
    )


def _guardrails(block: Mapping) -> Guardrails:
    budget = block.get("budget")
    return Guardrails(
        frequency_caps=tuple(FrequencyCap(**cap) for cap in block["frequency_caps"]),
        max_action_share=block.get("max_action_share"),
        budget=None if budget is None else Budget(budget["amount"], BudgetPeriod(budget["period"])),
        circuit_breaker=CircuitBreaker(**block["circuit_breaker"]),
        channel_exclusions=tuple(
            ChannelExclusion(channel=rule["channel"], key=rule["key"], values=tuple(rule["in"]))
            for rule in block["channel_exclusions"]
        ),
    )


def _campaign(block: Mapping) -> Campaign:
    return Campaign(
        external_id=block.get("external_id"),
        source=block.get("source"),
        starts_at=_timestamp(block.get("starts_at")),
        ends_at=_timestamp(block.get("ends_at")),
    )


def _schedule(block: Mapping) -> Schedule:
    quiet = block.get("quiet_hours")
    return Schedule(quiet_hours=None if quiet is None else QuietHours(**quiet))


def _personalizer(block: Mapping) -> Personalizer:
    return Personalizer(
        dynamic_actions=bool(block.get("dynamic_actions", True)),
        reward_aggregation=RewardAggregation(block.get("reward_aggregation", "earliest")),
    )


def _learning(block: Mapping) -> Learning:
    # The defaults of hpe_core.tenancy.settings.LearningSchema, for documents read without
    # the schema (Settings.of on a document stored before the block existed).
    drift = block.get("drift") or {}
    new_actions = block.get("new_actions") or {}
    tuning = block.get("tuning") or {}
    return Learning(
        drift=Drift(
            enabled=bool(drift.get("enabled", True)),
            delta=float(drift.get("delta", DRIFT_DELTA)),
            threshold=float(drift.get("threshold", DRIFT_THRESHOLD)),
            min_decisions=int(drift.get("min_decisions", DRIFT_MIN_DECISIONS)),
        ),
        retrain_max_decisions=int(block.get("retrain_max_decisions", RETRAIN_MAX_DECISIONS)),
        new_actions=NewActions(
            trial_share=float(new_actions.get("trial_share", TRIAL_SHARE)),
            trial_decisions=int(new_actions.get("trial_decisions", TRIAL_DECISIONS)),
        ),
        tuning=Tuning(
            enabled=bool(tuning.get("enabled", True)),
            every_hours=float(tuning.get("every_hours", TUNING_EVERY_HOURS)),
            min_decisions=int(tuning.get("min_decisions", TUNING_MIN_DECISIONS)),
            max_decisions=int(tuning.get("max_decisions", TUNING_MAX_DECISIONS)),
        ),
    )


def _publishable_keys(block: Mapping) -> PublishableKeys:
    # The defaults of hpe_core.tenancy.settings.PublishableKeysSchema, for documents
    # read without the schema (Settings.of on a document stored before the block existed).
    return PublishableKeys(
        allowed=bool(block.get("allowed", True)),
        channels=tuple(block.get("channels", ("web",))),
        outcome_events=tuple(block.get("outcome_events", ("impression", "view", "click"))),
        token_seconds=int(block.get("token_seconds", 3600)),
    )


def _timestamp(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def _tuple_or_none(value) -> tuple | None:
    return None if value is None else tuple(value)
