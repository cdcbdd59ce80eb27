"""The measurement pass of one configuration, run by a job every few minutes.

Roll up the days that changed, check the circuit breaker, refresh the recommendations
and, in ``autonomous`` mode, apply them. (Attribution runs separately and sooner: its
credit must reach decisions before their reward windows close.)

The pass is idempotent: run twice on the same data, the second run recomputes the same
rollups, raises the same recommendations (stored rows unchanged) and applies nothing new.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpe_core.learn import adaptation, learning
from hpe_core.measure import evaluation, evaluation_snapshots, metrics, rollups, tuning
from hpe_core.recommend import circuit_breaker, learning_rules, recommendations
from hpe_core.results import DriftNotice, Evaluation, Summary, TuningResult
from hpe_core.store.models import Activity, Config, Recommendation, utcnow
from hpe_core.store.vocabulary import ConfigStatus, RecommendationStatus
from hpe_core.tenancy.configs import Catalog, settings_of
from hpe_core.tenancy.settings_types import AutomationLevel
from hpe_core.tenancy.workspaces import Principal

log = logging.getLogger(__name__)

#: Recommendations whose patch changes the VW arguments: the model is retrained at once.
_RETRAIN_KINDS = frozenset({"tune_learning", "change_exploration"})

#: Days the recommendations look back on (the metrics page's default range).
LOOKBACK_DAYS = 30
#: Decisions the off-policy evaluation re-scores per pass: enough for the rules' 500
#: minimum with room to spare, small enough to keep a pass to a second or two.
EVALUATION_LIMIT = 5000


@dataclasses.dataclass(frozen=True)
class MeasurementPlugins:
    """What measurement needs from the installed plugins, resolved once per process.

    :param attribution_models: model name -> model (``hpe_register_attribution_models``)
    :param channel_costs: channel name -> cost of one decision on it (the connector's
        ``cost_per_decision``), added to the action's own ``cost``
    """

    attribution_models: Mapping[str, object] = dataclasses.field(default_factory=dict)
    channel_costs: Mapping[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class MeasurementReport:
    """What one pass did (jobs return it as a dict).

    :param skipped: ``missing`` or ``inactive`` when the pass did nothing, else None
    :param days_refreshed: rollup days recomputed
    :param tripped: whether the circuit breaker reverted everyone to the baseline
    :param open_recommendations: ``kind:subject`` of the open recommendations afterwards
    :param applied: ``kind:subject`` of those the engine applied (autonomous mode)
    :param evaluation_error: why the off-policy evaluation was left out, if it was
    """

    config_id: str
    skipped: str | None = None
    days_refreshed: int = 0
    tripped: bool = False
    open_recommendations: list[str] = dataclasses.field(default_factory=list)
    applied: list[str] = dataclasses.field(default_factory=list)
    evaluation_error: str | None = None


def run(
    session: Session,
    config_id: uuid.UUID,
    plugins: MeasurementPlugins,
    *,
    now: dt.datetime | None = None,
) -> MeasurementReport:
    """One measurement pass over one configuration; commits its work.

    1. rollups (committed on their own: the reports are right even if a later step fails);
    2. the metrics summary of the last :data:`LOOKBACK_DAYS` days and the off-policy
       evaluation (left out, logged, if it fails: its rules are skipped), kept for the
       results page (:mod:`hpe_core.measure.evaluation_snapshots`);
    3. the circuit breaker, on its own window;
    4. the recommendation rules, stored; in ``autonomous`` mode the engine applies those
       it may (never after the breaker tripped in this pass: automation is manual then).

    :returns: the report; a missing or INACTIVE configuration is skipped
    """
    now = now or utcnow()
    config = session.get(Config, config_id)
    if config is None or config.status == ConfigStatus.INACTIVE:
        return MeasurementReport(
            str(config_id), skipped="missing" if config is None else "inactive"
        )
    days = set(rollups.refresh(session, config, channel_costs=plugins.channel_costs, now=now))
    session.commit()

    today = now.astimezone(dt.UTC).date()
    since = today - dt.timedelta(days=LOOKBACK_DAYS - 1)
    summary = metrics.summary_for(
        session, config, since, today, channel_costs=plugins.channel_costs, today=today
    )
    evaluated, evaluation_error = _evaluate(session, config, since, today)
    if evaluated is not None:
        _keep_evaluation(session, config, evaluated, now=now)
    tuned = _tune(session, config, now=now)

    # From here on the pass may change the settings: lock and re-read the configuration
    # (PostgreSQL), so a person's PATCH committed meanwhile is kept, not overwritten.
    session.refresh(config, with_for_update=True)
    catalog = recommendations.engine_catalog(
        config, plugins.channel_costs.keys(), plugins.attribution_models.keys()
    )
    tripped = _check_breaker(session, config, plugins, catalog, now=now)
    applied = _recommend(session, config, summary, evaluated, catalog, tuned, now=now)
    if applied or tripped:
        # The settings changed (costs, actions, reward inputs): roll up again so this pass
        # leaves the stored days current, and the next pass has nothing left to do.
        days.update(rollups.refresh(session, config, channel_costs=plugins.channel_costs, now=now))
    session.commit()
    if any(row.kind in _RETRAIN_KINDS for row in applied):
        # New learning settings: serve a model trained on the recent log with them now,
        # rather than an empty one until the next learn run.
        learning.retrain_for_settings(session, config.id, now=now)
    return _report(session, config, days, tripped, applied, evaluation_error)


def _check_breaker(
    session: Session,
    config: Config,
    plugins: MeasurementPlugins,
    catalog: Catalog,
    *,
    now: dt.datetime,
) -> bool:
    """The circuit breaker on its own window; whether it tripped now."""
    first, last = circuit_breaker.window(session, config, now=now)
    window_summary = None  # an empty window (automation changed today) judges nothing
    if first <= last:
        today = now.astimezone(dt.UTC).date()
        window_summary = metrics.summary_for(
            session, config, first, last, channel_costs=plugins.channel_costs, today=today
        )
    return circuit_breaker.check(session, config, window_summary, now=now, catalog=catalog)


def _recommend(
    session: Session,
    config: Config,
    summary: Summary,
    evaluated: Evaluation | None,
    catalog: Catalog,
    tuned: TuningResult | None,
    *,
    now: dt.datetime,
) -> list[Recommendation]:
    """Store the rules' proposals; in ``autonomous`` mode apply those the engine may.

    :returns: the recommendations applied
    """
    settings = settings_of(config)
    days_observed = now.astimezone(dt.UTC).date() - config.created_at.astimezone(dt.UTC).date()
    proposals = recommendations.propose(
        settings,
        summary,
        evaluated,
        days_observed=days_observed.days + 1,
        drift=_recent_drift(session, config, now=now),
        tuning=tuned,
    )
    recommendations.refresh(session, config, proposals, now=now)
    if settings_of(config).automation != AutomationLevel.AUTONOMOUS:
        return []
    return recommendations.apply_automatic(session, config, catalog, now=now)


def _tune(session: Session, config: Config, *, now: dt.datetime) -> TuningResult | None:
    """Self-tuning: evaluate the candidate learning settings when due, else read the last
    evaluation (:mod:`hpe_core.measure.tuning`). In a savepoint, and logged if it fails:
    the other rules must not stop for it."""
    try:
        with session.begin_nested():
            if tuning.due(session, config, now=now):
                return tuning.evaluate(session, config, now=now)
            return tuning.latest(session, config)
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("evaluating the learning settings of %s failed", config.id)
        return None


def _recent_drift(session: Session, config: Config, *, now: dt.datetime) -> DriftNotice | None:
    """The learner's latest drift of the last ``NOTICE_DAYS`` days (its activity), if any."""
    since = now - dt.timedelta(days=learning_rules.NOTICE_DAYS)
    data = session.scalar(
        select(Activity.data)
        .where(
            Activity.config_id == config.id,
            Activity.type == adaptation.MODEL_DRIFT_DETECTED,
            Activity.created_at >= since,
        )
        .order_by(Activity.created_at.desc())
        .limit(1)
    )
    if data is None:
        return None
    return DriftNotice(
        version=int(data["version"]),
        change_at=dt.datetime.fromisoformat(data["change_at"]),
        detected_at=dt.datetime.fromisoformat(data["detected_at"]),
        reference_reward=float(data["reference_reward"]),
        recent_reward=float(data["recent_reward"]),
        recent_decisions=int(data["recent_decisions"]),
        retrained_examples=int(data["retrained_examples"]),
    )


def _report(
    session: Session,
    config: Config,
    days: set[dt.date],
    tripped: bool,
    applied: list[Recommendation],
    evaluation_error: str | None,
) -> MeasurementReport:
    engine = Principal(config.workspace_id, recommendations.ENGINE_ACTOR)
    open_rows = recommendations.list_for(
        session, engine, config.id, status=RecommendationStatus.OPEN
    )
    return MeasurementReport(
        config_id=str(config.id),
        days_refreshed=len(days),
        tripped=tripped,
        open_recommendations=[f"{row.kind}:{row.subject}" for row in open_rows],
        applied=[f"{row.kind}:{row.subject}" for row in applied],
        evaluation_error=evaluation_error,
    )


def _evaluate(
    session: Session, config: Config, since: dt.date, today: dt.date
) -> tuple[Evaluation | None, str | None]:
    """The off-policy evaluation, or ``(None, why)`` if it fails.

    In a savepoint: a failed query must not abort the pass's transaction (PostgreSQL).
    Any exception is caught on purpose: recommendations and the circuit breaker must not
    stop because one estimator hit a problem; the traceback is logged.
    """
    try:
        with session.begin_nested():
            return (
                evaluation.evaluate(
                    session,
                    config,
                    date_from=since,
                    date_to=today,
                    # The logged policy costs nothing more and completes the page's panel.
                    policies=evaluation.DEFAULT_POLICIES,
                    limit=EVALUATION_LIMIT,
                ),
                None,
            )
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.exception("off-policy evaluation failed for %s; its rules are skipped", config.id)
        return None, f"{type(exc).__name__}: {exc}"[:500]


def _keep_evaluation(
    session: Session, config: Config, evaluated: Evaluation, *, now: dt.datetime
) -> None:
    """Keep the evaluation for the results page (committed with the pass). In a
    savepoint, and logged if it fails: the page then evaluates on demand, as before."""
    try:
        with session.begin_nested():
            evaluation_snapshots.store(
                session, config.id, evaluated, limit=EVALUATION_LIMIT, now=now
            )
    except Exception:  # noqa: BLE001 - the pass must not stop for the page's copy
        log.exception("could not keep the evaluation of %s for the results page", config.id)
