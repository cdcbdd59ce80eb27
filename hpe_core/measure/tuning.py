"""Self-tuning: candidate learning settings evaluated on the logged decisions.

Every ``learning.tuning.every_hours`` the measurement pass replays the most recent
learned decisions (``learning.tuning.max_decisions``) through a fresh model for the current
exploration settings and for each candidate (:func:`candidates`: other learning rates and
learning-rate decays). Replaying is *progressive*: each decision is first scored by the
candidate's model as it stands (trained on the decisions before it), then learned. The
score is the doubly robust term of :mod:`hpe_core.measure.estimators` with the logged
propensity, so the mean over the window estimates the reward per decision that learning
with those settings would have earned on this traffic, without serving it. Candidates are
compared with the current settings decision by decision (paired differences), with a
Bonferroni-corrected 95% interval over the candidates tried.

The best candidate whose whole interval is above zero becomes a ``tune_learning``
recommendation (the patch, the estimated gain and its interval); ``autonomous``
configurations apply it like any other (the guardrails hold, and the circuit breaker
watches the result). Applying it changes the VW arguments, so the next learn run retrains
on the recent log (:mod:`hpe_core.learn.adaptation`) instead of starting empty.

Each evaluation is logged as a ``model.tuning_evaluated`` activity; the passes in between
read it back (:func:`latest`), so the recommendation stays in step without re-running.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from statistics import NormalDist

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpe_core.decide.features import ActionCatalog
from hpe_core.decide.policy.exploration import vw_arguments
from hpe_core.decide.policy.learner import Learner
from hpe_core.learn import adaptation
from hpe_core.measure.estimators import LoggedDecision, RewardModel
from hpe_core.results import TuningCandidate, TuningResult
from hpe_core.store.models import Activity, Config
from hpe_core.tenancy import activities
from hpe_core.tenancy.configs import settings_of
from hpe_core.tenancy.settings_types import Exploration

#: The activity an evaluation is logged as (``data``: :meth:`TuningResult` as a dict).
MODEL_TUNING_EVALUATED = "model.tuning_evaluated"
#: Learning rates and decays tried (with the current ones). The rates span the range that
#: mattered in bench/README-exploration.md; power_t 0.5 is VW's default decay, 0.25 a
#: slower one (more weight to recent evidence).
LEARNING_RATES = (0.05, 0.1, 0.2, 0.5)
POWER_TS = (0.25, 0.5)
#: Family-wise error rate of the comparisons (Bonferroni over the candidates).
ALPHA = 0.05
#: The settings a candidate changes (a patch of ``exploration``).
TUNED = ("learning_rate", "power_t")


def candidates(exploration: Exploration) -> list[dict]:
    """The exploration patches tried: every pair of :data:`LEARNING_RATES` (and the
    current rate) and :data:`POWER_TS` (and the current decay), the current pair first."""
    rates = dict.fromkeys((exploration.learning_rate, *LEARNING_RATES))
    decays = dict.fromkeys((exploration.power_t, *POWER_TS))
    pairs = [{"learning_rate": float(r), "power_t": float(p)} for r in rates for p in decays]
    return pairs  # the first is the current settings


def due(session: Session, config: Config, *, now: dt.datetime) -> bool:
    """Whether the configuration's candidates should be evaluated now: tuning is on, and
    the last evaluation is older than ``every_hours`` or was of other settings."""
    tuning = settings_of(config).learning.tuning
    if not tuning.enabled:
        return False
    last = _last_activity(session, config)
    if last is None:
        return True
    if last.data.get("current") != _current(settings_of(config).exploration):
        return True
    return now - last.created_at >= dt.timedelta(hours=tuning.every_hours)


def evaluate(
    session: Session, config: Config, *, now: dt.datetime, record: bool = True
) -> TuningResult | None:
    """Replay the recent learned decisions for the current settings and each candidate.

    :param record: log the result as a ``model.tuning_evaluated`` activity
    :returns: the result, or None when fewer than ``tuning.min_decisions`` decisions are
        learned (nothing is logged then)
    """
    settings = settings_of(config)
    tuning = settings.learning.tuning
    catalog = ActionCatalog(settings.actions)
    examples, rows = _recent(session, config, catalog, tuning.max_decisions)
    if len(examples) < tuning.min_decisions:
        return None
    reward_model = RewardModel(rows)
    base = dataclasses.asdict(settings.exploration)
    tried = candidates(settings.exploration)
    terms = [_replay({**base, **patch}, examples, rows, reward_model) for patch in tried]
    result = compare(tried, terms, n=len(examples), evaluated_at=now)
    if record:
        activities.record(
            session,
            workspace_id=config.workspace_id,
            config_id=config.id,
            type=MODEL_TUNING_EVALUATED,
            actor="engine",
            data=result.as_dict(),
        )
    return result


def compare(
    tried: Sequence[dict], terms: Sequence[Sequence[float]], *, n: int, evaluated_at: dt.datetime
) -> TuningResult:
    """Each candidate's estimate and its gain over the first (the current settings), with
    Bonferroni-corrected intervals; the best candidate whose gain interval is above zero.

    :param terms: per candidate, its per-decision doubly robust terms (same decisions)
    """
    z = NormalDist().inv_cdf(1 - ALPHA / (2 * max(1, len(tried) - 1)))
    current = terms[0]
    rows = []
    for patch, series in zip(tried, terms, strict=True):
        differences = [a - b for a, b in zip(series, current, strict=True)]
        gain = sum(differences) / n
        half = z * _sd(differences) / math.sqrt(n) if n > 1 else math.inf
        rows.append(
            TuningCandidate(
                learning_rate=patch["learning_rate"],
                power_t=patch["power_t"],
                estimate=sum(series) / n,
                gain=gain,
                gain_ci=(gain - half, gain + half),
            )
        )
    winners = [row for row in rows[1:] if row.gain_ci[0] > 0]
    best = max(winners, key=lambda row: row.estimate, default=None)
    return TuningResult(
        evaluated_at=evaluated_at,
        n=n,
        current=rows[0],
        candidates=tuple(rows),
        best=best,
        z=z,
    )


def latest(session: Session, config: Config) -> TuningResult | None:
    """The last evaluation, if it was of the current settings (else it no longer says
    anything about them)."""
    last = _last_activity(session, config)
    if last is None or last.data.get("current") != _current(settings_of(config).exploration):
        return None
    return TuningResult.from_dict(last.data)


# --- replay ------------------------------------------------------------------------------


def _replay(
    exploration: dict,
    examples: Sequence[tuple],
    rows: Sequence[LoggedDecision],
    reward_model: RewardModel,
) -> list[float]:
    """Progressive validation of one setting: each decision's doubly robust term under
    the model as trained on the decisions before it, then the decision is learned."""
    learner = Learner(vw_arguments(exploration))
    terms = []
    try:
        for example, row in zip(examples, rows, strict=True):
            shared, lines, chosen, reward, propensity = example
            pmf = learner.predict(shared, lines)
            rhat = reward_model.row_vector(row)
            direct = sum(p * r for p, r in zip(pmf, rhat, strict=True))
            terms.append(direct + pmf[chosen] / propensity * (reward - rhat[chosen]))
            learner.learn_batch([example])
    finally:
        learner.close()
    return terms


def _recent(
    session: Session, config: Config, catalog: ActionCatalog, limit: int
) -> tuple[list[tuple], list[LoggedDecision]]:
    """The most recent ``limit`` learned decisions, oldest first, as VW examples and as
    the estimators' rows."""
    examples, rows = [], []
    for row in adaptation.learned_decisions(session, config.id, limit=limit):
        example = adaptation.replay_row(catalog, row)
        if example is None:
            continue
        examples.append(example)
        channels = row.eligible_channels or [row.channel] * len(row.eligible)
        present = [(a, c) for a, c in zip(row.eligible, channels, strict=True) if a in catalog]
        rows.append(
            LoggedDecision(
                channel=row.channel,
                eligible=tuple(a for a, _c in present),
                action_id=row.action_id,
                propensity=float(row.probability),
                reward=float(row.reward),
                channels=None if row.eligible_channels is None else tuple(c for _a, c in present),
            )
        )
    return examples, rows


def _sd(values: Sequence[float]) -> float:
    n = len(values)
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def _current(exploration: Exploration) -> dict:
    return {
        "learning_rate": float(exploration.learning_rate),
        "power_t": float(exploration.power_t),
    }


def _last_activity(session: Session, config: Config) -> Activity | None:
    return session.scalar(
        select(Activity)
        .where(Activity.config_id == config.id, Activity.type == MODEL_TUNING_EVALUATED)
        .order_by(Activity.created_at.desc())
        .limit(1)
    )
