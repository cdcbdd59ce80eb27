"""What learning keeps beside a model version, and the trial of actions the model does not
know yet (:func:`with_trial`), which serving applies.

An action added to a live configuration starts unknown to a model that has learned for
a while; left to the model, a new action is tried about as often as its exploration
tries any poor option, so judging it could take tens of thousands of decisions. While on
trial it gets ``learning.new_actions.trial_share`` of the treatment's decisions (split
between the actions on trial) until the model has learned ``trial_decisions`` of its
decisions. The mixed distribution is what is served and logged, so propensities stay
exact and evaluation and learning are unaffected. A model that is new judges all its
actions at once: nothing is on trial then.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from hpe_core.store.models import ModelVersion
from hpe_core.tenancy.settings_types import NewActions, Settings


@dataclasses.dataclass
class LearnerState:
    """What learning keeps beside a model version (stored as a JSON document).

    :param drift: the detector's state (:meth:`PageHinkley.state`)
    :param known: action ids the model has judged: those it started with, and those whose
        trial ended
    :param trial: action id -> its decisions learned so far, for actions on trial
    """

    drift: dict | None = None
    known: list[str] = dataclasses.field(default_factory=list)
    trial: dict[str, int] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, document: Mapping | None) -> LearnerState:
        """The state stored with a version (None: a version from before states existed)."""
        document = document or {}
        return cls(
            drift=document.get("drift"),
            known=list(document.get("known") or ()),
            trial={str(k): int(v) for k, v in (document.get("trial") or {}).items()},
        )

    @classmethod
    def starting(cls, previous: ModelVersion | None, settings: Settings) -> LearnerState:
        """The state a learn run starts from: the newest version's, else a new one that
        knows every current action (a new model judges them all at once).

        A version from before states existed knows the actions of the settings now.
        """
        if previous is None or previous.state is None:
            return cls(known=list(settings.action_ids))
        return cls.of(previous.state)

    def document(self) -> dict:
        return {"drift": self.drift, "known": list(self.known), "trial": dict(self.trial)}

    def note_actions(self, action_ids: Iterable[str]) -> None:
        """Put the current actions the model does not know on trial (added since)."""
        known = set(self.known)
        for action_id in action_ids:
            if action_id not in known and action_id not in self.trial:
                self.trial[action_id] = 0

    def note_learned(self, chosen: Iterable[str], new_actions: NewActions) -> None:
        """Count the learned decisions of actions on trial; end the trials that are done."""
        for action_id in chosen:
            if action_id in self.trial:
                self.trial[action_id] += 1
        for action_id, count in list(self.trial.items()):
            if count >= new_actions.trial_decisions:
                del self.trial[action_id]
                self.known.append(action_id)

    def forget_removed(self, action_ids: Iterable[str]) -> None:
        """Drop actions no longer in the settings (a removed action stops at once)."""
        current = set(action_ids)
        self.trial = {a: n for a, n in self.trial.items() if a in current}

    def on_trial(self, eligible: Sequence[str]) -> list[int]:
        """Positions in ``eligible`` of the actions on trial: on trial, or unknown to the
        model (added after its last learn run)."""
        known = set(self.known)
        return [i for i, a in enumerate(eligible) if a in self.trial or a not in known]


def with_trial(
    probabilities: Sequence[float], trial_positions: Sequence[int], share: float
) -> list[float]:
    """The served distribution with ``share`` of it spread over the actions on trial.

    Mixing keeps it a distribution (the propensity logged is exact) and keeps the model's
    own preferences for the rest. Nothing changes when no action or every action is on
    trial (a new model explores them all anyway), or when ``share`` is 0.

    :param probabilities: the model's distribution over the eligible actions
    :param trial_positions: positions of the actions on trial among them
    :param share: ``learning.new_actions.trial_share``
    """
    count = len(trial_positions)
    if not count or count == len(probabilities) or share <= 0:
        return list(probabilities)
    mixed = [p * (1.0 - share) for p in probabilities]
    for position in trial_positions:
        mixed[position] += share / count
    return mixed
