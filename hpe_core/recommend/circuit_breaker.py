"""The circuit breaker guardrail: stop the model when it is clearly hurting.

When treatment (the model) engages people significantly less than the holdout (the
baseline), the engine sets ``automation`` to ``manual``: everyone gets the baseline at
once, the model keeps learning in the background, and a critical ``circuit_breaker``
recommendation offers to restore the previous automation level. A person decides when.

It looks at a recent window only (``guardrails.circuit_breaker.window_days``), which
starts after the last change of ``automation``: days served under another automation
level say nothing about the current one, and a restored model must not be tripped again
at once by the very data that tripped it. Rollups are daily, so the window starts the
UTC day after that change.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpe_core.recommend import recommendations
from hpe_core.recommend.proposals import Proposal
from hpe_core.recommend.rules import CIRCUIT_BREAKER
from hpe_core.results import Summary
from hpe_core.store.models import Config, Recommendation
from hpe_core.store.vocabulary import RecommendationStatus, Severity
from hpe_core.tenancy import activities, configs
from hpe_core.tenancy.configs import Catalog, settings_of
from hpe_core.tenancy.settings_types import AutomationLevel, Settings
from hpe_core.tenancy.workspaces import Principal

log = logging.getLogger(__name__)

KIND = CIRCUIT_BREAKER.kind
TRIPPED = "guardrail.circuit_breaker"
#: How many past config.updated activities to search for the last automation change.
_HISTORY_LIMIT = 1000


def last_automation_change(session: Session, config: Config) -> dt.datetime | None:
    """When ``settings.automation`` last changed (from the activity log), or None."""
    updates = session.scalars(
        activities.query(session, config.id, type=activities.CONFIG_UPDATED).limit(_HISTORY_LIMIT)
    )
    for activity in updates:
        # The activity log is stored JSON, written by other versions too: read it warily.
        changes = activity.data.get("changes") if isinstance(activity.data, dict) else None
        if changes and "settings.automation" in changes:
            return activity.created_at
    return None


def window(session: Session, config: Config, *, now: dt.datetime) -> tuple[dt.date, dt.date]:
    """The dates the breaker judges: the last ``window_days`` days (today included), from
    the day after the last automation change at the earliest.

    :returns: ``(first, last)``; ``first > last`` when the window is empty (automation
        changed today)
    """
    today = now.astimezone(dt.UTC).date()
    window_days = settings_of(config).guardrails.circuit_breaker.window_days
    first = today - dt.timedelta(days=window_days - 1)
    changed = last_automation_change(session, config)
    if changed is not None:
        first = max(first, changed.astimezone(dt.UTC).date() + dt.timedelta(days=1))
    return first, today


def assess(settings: Settings, summary: Summary | None) -> dict | None:
    """Whether the breaker trips on this summary (pure).

    It trips when it is enabled, the model serves (automation is not manual), both variants
    have ``min_decisions`` in the window, the 95% lift interval lies below zero and the
    p-value is below ``alpha``.

    :returns: the evidence when it trips, else None
    """
    breaker = settings.guardrails.circuit_breaker
    if not breaker.enabled or settings.automation == AutomationLevel.MANUAL or summary is None:
        return None
    decisions = summary.decisions
    if min(decisions.treatment, decisions.holdout) < breaker.min_decisions:
        return None
    lift = summary.lift
    ci_high, p_value = lift.ci_high, lift.p_value
    if ci_high is None or p_value is None or not (ci_high < 0 and p_value < breaker.alpha):
        return None
    return {
        "decisions": dataclasses.asdict(decisions),
        "engagements": dataclasses.asdict(summary.engagements),
        "engagement_rate": dataclasses.asdict(summary.engagement_rate),
        "lift": lift.as_dict(),
        "alpha": breaker.alpha,
        "min_decisions": breaker.min_decisions,
    }


def check(
    session: Session,
    config: Config,
    summary: Summary | None,
    *,
    now: dt.datetime,
    catalog: Catalog | None = None,
) -> bool:
    """Trip the breaker if the summary of :func:`window` shows treatment clearly worse.

    Tripping sets ``automation`` to ``manual`` through :func:`hpe_core.tenancy.configs.update`
    as the engine (validated, logged as ``config.updated``), records a
    ``guardrail.circuit_breaker`` activity with the evidence and opens a critical
    ``circuit_breaker`` recommendation whose patch restores the previous level (never
    applied automatically). An open one is resolved once automation was restored by
    other means (a PATCH). Nothing is committed here.

    :param summary: the metrics summary over :func:`window` (the caller computes it)
    :param catalog: to validate the change; default :func:`recommendations.engine_catalog`
    :returns: whether it tripped now
    """
    _resolve_if_restored(session, config, now)
    settings = settings_of(config)
    evidence = assess(settings, summary)
    if evidence is None:
        return False
    previous = settings.automation.value
    first, last = window(session, config, now=now)
    evidence |= {"from": first.isoformat(), "to": last.isoformat(), "previous": previous}
    principal = Principal(config.workspace_id, recommendations.ENGINE_ACTOR)
    configs.update(
        session,
        principal,
        catalog or recommendations.engine_catalog(config),
        config.id,
        settings_patch={"automation": AutomationLevel.MANUAL.value},
    )
    recommendations.log_activity(session, config, TRIPPED, principal.actor, evidence)
    recommendations.upsert(session, config, _proposal(evidence, previous), now=now)
    log.warning("circuit breaker tripped for %s: %s", config.id, evidence["lift"])
    return True


def _proposal(evidence: dict, previous: str) -> Proposal:
    rates = evidence["engagement_rate"]
    lift = evidence["lift"]
    return Proposal(
        spec=CIRCUIT_BREAKER,
        subject="",
        severity=Severity.CRITICAL,
        title="The model was switched off: it engaged people less than the baseline.",
        detail=(
            f"From {evidence['from']} to {evidence['to']}, treatment engaged "
            f"{_share(rates['treatment'])} of {evidence['decisions']['treatment']} "
            f"decisions against {_share(rates['holdout'])} of "
            f"{evidence['decisions']['holdout']} in the holdout (lift "
            f"{_share(lift['estimate'])}, 95% interval up to {_share(lift['ci_high'])}, "
            f"p = {lift['p_value']:.2g}). "
            "The circuit breaker set automation to manual: everyone gets the baseline while "
            "the model keeps learning. Check recent changes (actions, exploration, "
            f"reward), then apply this to restore automation to {previous}."
        ),
        evidence=evidence,
        patch={"automation": previous},
    )


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}".lstrip("+")


def _resolve_if_restored(session: Session, config: Config, now: dt.datetime) -> None:
    """An open breaker recommendation is moot once automation is no longer manual."""
    if settings_of(config).automation == AutomationLevel.MANUAL:
        return
    row = session.scalar(
        select(Recommendation).where(
            Recommendation.config_id == config.id,
            Recommendation.kind == KIND,
            Recommendation.status == RecommendationStatus.OPEN,
        )
    )
    if row is not None:
        recommendations.move(row, RecommendationStatus.RESOLVED, now=now)
