"""Optimization recommendations: stored, listed, applied (or dismissed), each step logged.

The rules live in :mod:`hpe_core.recommend.rules` (pure: numbers in, proposals out).
This module keeps one row per ``(config_id, kind, subject)`` in step with them:

- a new proposal opens a row; an open row is refreshed with the latest numbers; a
  ``resolved`` row raised again is reopened;
- an ``open`` row no longer proposed is ``resolved`` (the condition cleared);
- an ``applied`` row is left alone, unless it is raised again with a patch that would
  still change the settings once :data:`REOPEN_AFTER` has passed since it was applied
  (e.g. exploration widened once is still too narrow). The wait matters: the metrics
  window still holds the days before the change, so without it the engine would
  escalate every few minutes on the same old data;
- a ``dismissed`` row is left alone: a person said no to that change. It is reopened
  only when raised again with a *different* patch, :data:`REOPEN_AFTER` after the
  dismissal. An alarm without a patch (SRM) therefore stays dismissed; the metrics'
  ``srm`` block keeps showing it.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpe_core.errors import Conflict, InvalidInput, NotFound

# Proposal and propose are re-exported: recommendations.propose is the rules' entry point.
from hpe_core.recommend.rules import (  # noqa: F401
    KINDS,
    MIN_ACTIONS,
    Proposal,
    auto_apply,
    propose,
)
from hpe_core.store.models import Config, Recommendation, utcnow
from hpe_core.tenancy import activities, configs
from hpe_core.tenancy.configs import Catalog
from hpe_core.tenancy.merge_patch import apply_merge_patch
from hpe_core.tenancy.settings import ATTRIBUTION_MODELS
from hpe_core.tenancy.workspaces import Principal

log = logging.getLogger(__name__)

STATUSES = ("open", "applied", "dismissed", "resolved")
STATUS_FILTERS = (*STATUSES, "all")
REOPEN_AFTER = dt.timedelta(days=7)
ENGINE_ACTOR = "engine"
RECOMMENDATION_APPLIED = "recommendation.applied"
RECOMMENDATION_DISMISSED = "recommendation.dismissed"
_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


# --- Keeping rows in step with the rules ---------------------------------------------------


def refresh(
    session: Session, config: Config, proposals: Iterable[Proposal], *, now: dt.datetime
) -> list[Recommendation]:
    """Store this pass's proposals (of the rule kinds) and resolve the ones that cleared.

    Rows of other kinds (``circuit_breaker``) are not resolved here: their owner manages
    them. Writing nothing when nothing changed keeps repeated passes idempotent.

    :returns: the rows of the proposals, in proposal order
    """
    rows = {
        (row.kind, row.subject): row
        for row in session.scalars(
            select(Recommendation).where(
                Recommendation.config_id == config.id, Recommendation.kind.in_(KINDS)
            )
        )
    }
    raised = []
    seen = set()
    for proposal in proposals:
        key = (proposal.kind, proposal.subject)
        seen.add(key)
        raised.append(_upsert(session, config, proposal, rows.get(key), now))
    for key, row in rows.items():
        if key not in seen and row.status == "open":
            row.status, row.updated_at = "resolved", now
    session.flush()
    return raised


def upsert(
    session: Session, config: Config, proposal: Proposal, *, now: dt.datetime
) -> Recommendation:
    """Store one proposal as a new event (the circuit breaker's trip): the row is opened
    whatever its status, with the new content. Nothing else is resolved.
    """
    row = session.scalar(
        select(Recommendation).where(
            Recommendation.config_id == config.id,
            Recommendation.kind == proposal.kind,
            Recommendation.subject == proposal.subject,
        )
    )
    if row is not None and row.status != "open":
        row.status, row.applied_at, row.applied_by = "open", None, None
        row.updated_at = now
    row = _upsert(session, config, proposal, row, now)
    session.flush()
    return row


def _upsert(
    session: Session,
    config: Config,
    proposal: Proposal,
    row: Recommendation | None,
    now: dt.datetime,
) -> Recommendation:
    content = {
        "severity": proposal.severity,
        "title": proposal.title,
        "detail": proposal.detail,
        "evidence": _finite(proposal.evidence),
        "patch": proposal.patch,
    }
    if row is None:
        row = Recommendation(
            id=uuid.uuid4(),
            workspace_id=config.workspace_id,
            config_id=config.id,
            kind=proposal.kind,
            subject=proposal.subject,
            status="open",
            created_at=now,
            updated_at=now,
            **content,
        )
        session.add(row)
        return row
    reopen = row.status == "resolved" or _raised_again(row, proposal, config.settings, now)
    if row.status in ("applied", "dismissed") and not reopen:
        return row
    changed = any(getattr(row, name) != value for name, value in content.items())
    if reopen:
        row.status, row.applied_at, row.applied_by = "open", None, None
    if changed or reopen:
        for name, value in content.items():
            setattr(row, name, value)
        row.updated_at = now
    return row


def _raised_again(
    row: Recommendation, proposal: Proposal, settings: dict, now: dt.datetime
) -> bool:
    if row.status == "applied":
        since = row.applied_at or row.updated_at
        changes_settings = proposal.patch is not None and (
            apply_merge_patch(settings, proposal.patch) != settings
        )
        return changes_settings and now - since >= REOPEN_AFTER
    if row.status == "dismissed":
        return proposal.patch != row.patch and now - row.updated_at >= REOPEN_AFTER
    return False


def _finite(value: object) -> object:
    """NaN and infinities become None: JSON (and PostgreSQL's JSONB) cannot hold them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# --- Reading ------------------------------------------------------------------------------


def list_for(
    session: Session, principal: Principal, config_id: uuid.UUID, *, status: str = "open"
) -> list[Recommendation]:
    """A configuration's recommendations with one status (or ``all``), most severe first.

    :raises NotFound: unknown or another workspace's configuration
    :raises InvalidInput: unknown status
    """
    if status not in STATUS_FILTERS:
        raise InvalidInput(
            f"Unknown status {status!r}.",
            {"status": [f"Must be one of: {', '.join(STATUS_FILTERS)}."]},
        )
    config = configs.get(session, principal, config_id)
    statement = select(Recommendation).where(Recommendation.config_id == config.id)
    if status != "all":
        statement = statement.where(Recommendation.status == status)
    rows = list(session.scalars(statement))
    rows.sort(key=lambda r: (_SEVERITY_ORDER.get(r.severity, 9), r.created_at, r.kind, r.subject))
    return rows


def as_dict(row: Recommendation) -> dict:
    """The API's view of one recommendation (``auto_apply`` follows from kind and patch)."""
    return {
        "id": row.id,
        "config_id": row.config_id,
        "kind": row.kind,
        "subject": row.subject,
        "severity": row.severity,
        "title": row.title,
        "detail": row.detail,
        "evidence": row.evidence,
        "patch": row.patch,
        "status": row.status,
        "auto_apply": auto_apply(row.kind, row.patch),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "applied_at": row.applied_at,
        "applied_by": row.applied_by,
    }


def _get(session: Session, config: Config, recommendation_id: uuid.UUID) -> Recommendation:
    # FOR UPDATE (PostgreSQL): two people applying at once must not both pass the check.
    row = session.scalar(
        select(Recommendation)
        .where(Recommendation.id == recommendation_id, Recommendation.config_id == config.id)
        .with_for_update()
    )
    if row is None:
        raise NotFound(f"No recommendation {recommendation_id} for configuration {config.id}.")
    return row


# --- Applying and dismissing --------------------------------------------------------------


def apply(
    session: Session,
    principal: Principal,
    catalog: Catalog,
    config_id: uuid.UUID,
    recommendation_id: uuid.UUID,
    *,
    now: dt.datetime | None = None,
) -> tuple[Recommendation, Config]:
    """Apply an open recommendation's settings patch and log it.

    The patch goes through :func:`hpe_core.tenancy.configs.update` (validated whole, logged as
    ``config.updated``); then the row is marked applied and a ``recommendation.applied``
    activity records its kind, evidence and patch. List patches (the actions, the channel
    exclusions) are rebuilt on the current settings, so applying two recommendations in
    turn keeps both changes.

    :raises NotFound: unknown configuration or recommendation (or another workspace's)
    :raises Conflict: nothing to apply, not open, or the settings moved on so that the
        patch no longer applies (nothing is written then)
    """
    now = now or utcnow()
    config = configs.get(session, principal, config_id)
    # Lock and re-read the configuration (PostgreSQL): a change committed since it was
    # loaded must be what the patch is applied to, not overwritten by a stale copy.
    session.refresh(config, with_for_update=True)
    row = _get(session, config, recommendation_id)
    if row.patch is None:
        raise Conflict(
            "This recommendation has no settings change to apply: it asks a person to "
            "investigate (see its detail)."
        )
    if row.status != "open":
        raise Conflict(f"This recommendation is {row.status}; only open ones can be applied.")
    patch = _rebase(row, config.settings)
    try:
        config = configs.update(session, principal, catalog, config.id, settings_patch=patch)
    except InvalidInput as exc:
        raise Conflict(
            "The settings changed since this recommendation was made and its patch no "
            f"longer applies: {exc.message} Nothing was changed.",
            exc.errors,
        ) from exc
    row.status, row.patch = "applied", patch
    row.applied_at, row.applied_by, row.updated_at = now, principal.actor, now
    activities.record(
        session,
        workspace_id=config.workspace_id,
        config_id=config.id,
        type=RECOMMENDATION_APPLIED,
        actor=principal.actor,
        data={
            "recommendation_id": str(row.id),
            "kind": row.kind,
            "subject": row.subject,
            "evidence": row.evidence,
            "patch": patch,
        },
    )
    session.flush()
    return row, config


def _rebase(row: Recommendation, settings: dict) -> dict:
    """The patch to apply now: list-valued patches rebuilt on the current settings.

    A merge patch replaces a list whole, so a stored ``{"actions": [...]}`` would bring
    back an action another recommendation retired in the meantime.
    """
    if row.kind == "retire_action":
        actions = settings["actions"]
        if all(action["id"] != row.subject for action in actions):
            raise Conflict(f"Action {row.subject} is no longer among the actions.")
        if len(actions) - 1 < MIN_ACTIONS:
            raise Conflict(f"Retiring {row.subject} would leave fewer than {MIN_ACTIONS} actions.")
        baseline = settings["holdout"]["baseline"]
        if isinstance(baseline, dict) and baseline.get("action_id") == row.subject:
            raise Conflict(f"Action {row.subject} is the holdout's fixed baseline.")
        return {"actions": [action for action in actions if action["id"] != row.subject]}
    if row.kind == "channel_segment_underperforms" and "exclusion" in (row.evidence or {}):
        current = list(settings["guardrails"].get("channel_exclusions") or [])
        rule = row.evidence["exclusion"]
        return {"guardrails": {"channel_exclusions": current + ([] if rule in current else [rule])}}
    return row.patch


def dismiss(
    session: Session,
    principal: Principal,
    config_id: uuid.UUID,
    recommendation_id: uuid.UUID,
    *,
    now: dt.datetime | None = None,
) -> Recommendation:
    """Dismiss an open recommendation (a person decided against it) and log it.

    :raises NotFound: unknown configuration or recommendation
    :raises Conflict: it is not open
    """
    now = now or utcnow()
    config = configs.get(session, principal, config_id)
    row = _get(session, config, recommendation_id)
    if row.status != "open":
        raise Conflict(f"This recommendation is {row.status}; only open ones can be dismissed.")
    row.status, row.updated_at = "dismissed", now
    activities.record(
        session,
        workspace_id=config.workspace_id,
        config_id=config.id,
        type=RECOMMENDATION_DISMISSED,
        actor=principal.actor,
        data={"recommendation_id": str(row.id), "kind": row.kind, "subject": row.subject},
    )
    session.flush()
    return row


def apply_automatic(
    session: Session, config: Config, catalog: Catalog, *, now: dt.datetime
) -> list[Recommendation]:
    """``autonomous`` mode: apply every open recommendation the engine may apply itself.

    Most severe first; each in a savepoint, so one that no longer applies (a Conflict) is
    skipped and stays open. Stops as soon as the configuration is no longer autonomous (a
    recommendation may itself switch to manual).
    """
    principal = Principal(config.workspace_id, ENGINE_ACTOR)
    candidates = [
        row
        for row in list_for(session, principal, config.id, status="open")
        if auto_apply(row.kind, row.patch)
    ]
    applied = []
    for row in candidates:
        if config.settings.get("automation") != "autonomous":
            break
        try:
            with session.begin_nested():
                apply(session, principal, catalog, config.id, row.id, now=now)
        except Conflict as exc:
            log.info("not applying %s/%s to %s: %s", row.kind, row.subject, config.id, exc)
            continue
        applied.append(row)
    return applied


def engine_catalog(
    config: Config, channels: Iterable[str] = (), attribution_models: Iterable[str] = ()
) -> Catalog:
    """The catalog the engine validates its own changes with.

    What the plugins offer plus what the configuration already uses (it was validated
    when stored): a channel plugin missing from one worker must not block a change the
    engine makes for safety, such as reverting to the baseline.
    """
    settings = config.settings
    used_model = (settings.get("attribution") or {}).get("model")
    return Catalog(
        channels=dict.fromkeys([*channels, *settings.get("channels", [])]),
        attribution_models=dict.fromkeys(
            [*attribution_models, *ATTRIBUTION_MODELS, *([used_model] if used_model else [])]
        ),
    )
