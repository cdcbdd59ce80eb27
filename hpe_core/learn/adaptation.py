"""Keeping a model current: the drift detector, retraining from the log, actions on trial.

What learning keeps beside each model version (:class:`LearnerState`, the version's
``state`` column):

- the drift detector (:mod:`hpe_core.learn.drift`) fed with the reward of every decision
  the model served, in order. When the treatment's reward drops for good, the learn run
  **retrains**: a fresh model learns the logged decisions since the estimated change point
  (their propensities were logged, so learning from them is exact), then the batch. The
  run logs ``model.drift_detected`` with the evidence; the measurement pass turns it into
  a recommendation saying what happened.
- the actions the model knows, and those **on trial**
  (:mod:`hpe_core.decide.policy.trials`: serving gives them a share of the treatment).

A change of the exploration settings (a person's, or self-tuning's) retrains too: VW
models cannot change their arguments, so the new model learns the most recent logged
decisions (``learning.retrain_max_decisions``) instead of starting empty.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from hpe_core.decide.features import ActionCatalog, decision_features, pair_features
from hpe_core.decide.policy.learner import Learner
from hpe_core.decide.policy.trials import LearnerState
from hpe_core.learn.drift import Alarm, PageHinkley
from hpe_core.store.models import Decision
from hpe_core.store.vocabulary import DecisionSource, Policy
from hpe_core.tenancy.settings_types import Drift

#: Activity of a detected drop and the retrain it caused (``data``: see :func:`drift_data`).
MODEL_DRIFT_DETECTED = "model.drift_detected"
#: Activity of a retrain after the exploration settings changed.
MODEL_RETRAINED = "model.retrained"
#: ``ModelVersion.source`` of a version a retrain made.
RETRAIN_SOURCE = "retrain"


# --- drift ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Served:
    """A learned decision as the detector sees it: the policy that served it, its reward
    and its time."""

    policy: str
    reward: float
    created_at: dt.datetime


def watch(state: LearnerState, drift: Drift, batch: Iterable[Served]) -> Alarm | None:
    """Feed the model-served decisions of a batch to the detector, in order.

    :returns: the first alarm (the detector starts afresh then; a retrain learns the rest
        of the batch anyway), None when no drop is established or detection is off
    """
    if not drift.enabled:
        return None
    detector = PageHinkley.from_state(
        state.drift, delta=drift.delta, threshold=drift.threshold, min_decisions=drift.min_decisions
    )
    alarm = None
    for decision in batch:
        if decision.policy != Policy.MODEL:
            continue
        alarm = detector.update(decision.reward, key=decision.created_at.isoformat())
        if alarm is not None:
            break
    state.drift = detector.state()
    return alarm


def reset_drift(state: LearnerState) -> None:
    """A retrained model starts a new reference: what it earns from now on."""
    state.drift = None


def drift_data(alarm: Alarm, since: dt.datetime, now: dt.datetime, examples: int) -> dict:
    """The ``model.drift_detected`` activity's data: the evidence and the retrain."""
    return {
        "change_at": since.isoformat(),
        "detected_at": now.isoformat(),
        "reference_reward": alarm.reference_mean,
        "recent_reward": alarm.recent_mean,
        "recent_decisions": alarm.recent_decisions,
        "retrained_from": since.isoformat(),
        "retrained_examples": examples,
    }


# --- retraining ------------------------------------------------------------------------------


def retrain(
    session: Session,
    config_id: uuid.UUID,
    args: str,
    catalog: ActionCatalog,
    *,
    since: dt.datetime | None,
    limit: int,
) -> tuple[Learner, int]:
    """A fresh learner trained on the learned decisions of the log: those created from
    ``since`` on (all of the most recent ``limit`` when ``since`` is None), in order.

    Decisions whose action was removed from the settings, or whose propensity is 0, are
    left out, as learning leaves them out.

    :returns: the learner and how many decisions it learned
    """
    examples = []
    for row in learned_decisions(session, config_id, since=since, limit=limit):
        example = replay_row(catalog, row)
        if example is not None:
            examples.append(example)
    learner = Learner(args)
    learned = learner.learn_batch(examples) if examples else 0
    return learner, learned


def learned_decisions(
    session: Session, config_id: uuid.UUID, *, since: dt.datetime | None = None, limit: int
) -> list:
    """The most recent ``limit`` learned decisions of the log (from ``since`` on, when
    given), oldest first, with the columns :func:`replay_row` and the estimators read.
    Deferred decisions and those with propensity 0 are left out, as learning leaves
    them out."""
    conditions = [
        Decision.config_id == config_id,
        Decision.learned_at.is_not(None),
        Decision.reward.is_not(None),
        Decision.probability > 0,
        Decision.source != DecisionSource.DEFERRED,
    ]
    if since is not None:
        conditions.append(Decision.created_at >= since)
    newest_first = session.execute(
        select(
            Decision.channel,
            Decision.features,
            # The context only where no feature line was stored (older decisions).
            case((Decision.features.is_(None), Decision.context), else_=None).label("context"),
            Decision.eligible,
            Decision.eligible_channels,
            Decision.action_id,
            Decision.probability,
            Decision.reward,
        )
        .where(*conditions)
        .order_by(Decision.created_at.desc(), Decision.id.desc())
        .limit(limit)
    ).all()
    return list(reversed(newest_first))


def replay_row(catalog: ActionCatalog, row, reward: float | None = None) -> tuple | None:
    """:func:`replay_example` of a logged decision (a row or model with its columns), with
    its stored reward unless ``reward`` is given."""
    return replay_example(
        catalog,
        channel=row.channel,
        features=row.features,
        context=row.context,
        eligible=row.eligible,
        eligible_channels=row.eligible_channels,
        action_id=row.action_id,
        probability=row.probability,
        reward=row.reward if reward is None else reward,
    )


def replay_example(
    catalog: ActionCatalog,
    *,
    channel: str,
    features: str | None,
    context: Mapping | None,
    eligible: Sequence[str],
    eligible_channels: Sequence[str] | None,
    action_id: str,
    probability: float,
    reward: float,
) -> tuple | None:
    """One logged decision as a VW example ``(shared, action lines, index, reward,
    propensity)``, or None when it cannot be replayed (its action was removed, or its
    propensity is 0). Actions removed since are dropped from the eligible set.

    A decision whose channel the engine chose (``eligible_channels``) has one line per
    (action, channel) entry, the channel in the line (:func:`pair_line`).
    """
    if action_id not in catalog or probability <= 0:
        return None
    if eligible_channels is None:
        shared = features or decision_features(channel, context or {})
        present = [a for a in eligible if a in catalog]
        return (shared, catalog.lines(present), present.index(action_id), reward, probability)
    shared = features or pair_features(context or {})
    pairs = [(a, c) for a, c in zip(eligible, eligible_channels, strict=True) if a in catalog]
    if (action_id, channel) not in pairs:
        return None
    lines = [catalog.pair_line(a, c) for a, c in pairs]
    return (shared, lines, pairs.index((action_id, channel)), reward, probability)
