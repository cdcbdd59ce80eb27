"""What a decision request results in: a logged :class:`Decision`, or :class:`NoDecision`
with its :class:`NoDecisionReason`.

Plain values (frozen, no database, no JSON): :mod:`hpe_core.decide.decisions` makes them,
and :func:`hpe_core.deliver.touchpoints.response` turns them into the API's answer.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from enum import StrEnum
from operator import itemgetter

from hpe_core.store.vocabulary import Policy, Variant
from hpe_core.tenancy.settings_types import Action


class NoDecisionReason(StrEnum):
    """Why a request got no action (the answer's ``reason``), in the order checked."""

    #: Before ``campaign.starts_at`` or from ``campaign.ends_at`` on.
    CAMPAIGN_NOT_RUNNING = "campaign_not_running"
    #: Inside ``schedule.quiet_hours`` in the user's time zone.
    QUIET_HOURS = "quiet_hours"
    #: A ``guardrails.channel_exclusions`` rule matches the context.
    EXCLUDED = "excluded"
    #: The user withdrew consent for the channel (unsubscribe, bounce, complaint).
    NO_CONSENT = "no_consent"
    #: No action passes the channel, candidates and action rules.
    NO_ELIGIBLE_ACTION = "no_eligible_action"
    #: A ``guardrails.frequency_caps`` entry is reached for the user on this channel.
    FREQUENCY_CAP = "frequency_cap"
    #: No eligible action fits what is left of ``guardrails.budget``.
    BUDGET_EXHAUSTED = "budget_exhausted"
    #: Treatment only: every eligible action reached ``guardrails.max_action_share``.
    MAX_ACTION_SHARE = "max_action_share"


@dataclasses.dataclass(frozen=True, slots=True)
class RankedAction:
    """One eligible action and the probability the serving policy gave it."""

    action_id: str
    probability: float


_PROBABILITY = itemgetter(1)
_THIRD = itemgetter(2)


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """A decision that was made and logged (not yet committed: the caller commits).

    :param action: the chosen action (``action.document`` is what the answer shows)
    :param probability: its propensity under the serving policy
    :param model_version: the model that scored it (0: not trained yet)
    :param eligible: the eligible action ids, in the order the policy scored them
    :param probabilities: the policy's distribution over ``eligible``
    """

    #: None for a dry run (:meth:`~hpe_core.decide.decisions.DecisionEngine.try_out`).
    decision_id: uuid.UUID | None
    action: Action
    probability: float
    variant: Variant
    policy: Policy
    model_version: int
    eligible: tuple[str, ...]
    probabilities: tuple[float, ...]
    #: The channel it was decided on (the engine's choice for ``"channel": "auto"``).
    channel: str | None = None
    #: When the engine chose the channel: the channel of each ``eligible`` entry (an
    #: action appears once per channel it was eligible on); None otherwise.
    eligible_channels: tuple[str, ...] | None = None

    @property
    def action_id(self) -> str:
        return self.action.id

    @property
    def ranking(self) -> tuple[RankedAction, ...]:
        """Every eligible action with its probability, most likely first."""
        return tuple(RankedAction(a, p) for a, p in self.ranked_pairs())

    def ranked_channels(self) -> list[tuple[str, str, float]]:
        """``(action_id, channel, probability)`` most likely first, when the engine chose
        the channel (empty otherwise)."""
        if self.eligible_channels is None:
            return []
        return sorted(
            zip(self.eligible, self.eligible_channels, self.probabilities, strict=True),
            key=_THIRD,
            reverse=True,
        )

    def ranked_pairs(self) -> list[tuple[str, float]]:
        """``(action_id, probability)`` most likely first; ties keep the scoring order.

        The answer is built from these rather than from :attr:`ranking`: one object less
        per eligible action on the hot path.
        """
        return sorted(
            zip(self.eligible, self.probabilities, strict=True), key=_PROBABILITY, reverse=True
        )


@dataclasses.dataclass(frozen=True, slots=True)
class NoDecision:
    """Nothing was chosen and nothing was logged, for ``reason``."""

    reason: NoDecisionReason


@dataclasses.dataclass(frozen=True, slots=True)
class DryRun:
    """What a decision would be now (nothing logged), and why each other action was out.

    :param result: the decision (``decision_id`` None) or the refusal
    :param excluded: action id -> why it was left out (channel, candidates, a rule, a
        guardrail); actions the request refused as a whole are covered by ``reason``
    """

    result: Decision | NoDecision
    excluded: Mapping[str, str]
