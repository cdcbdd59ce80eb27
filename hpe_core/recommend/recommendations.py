"""Optimization recommendations: stored, listed, applied (or dismissed), each step logged.

The rules live in :mod:`hpe_core.recommend.rules` (pure: numbers in, proposals out).
This module keeps one row per ``(config_id, kind, subject)`` in step with them, and every
change of a row's status goes through :func:`move`:

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
from hpe_core.recommend.proposals import Proposal

# propose is re-exported: recommendations.propose is the rules' entry point.
from hpe_core.recommend.rules import RULE_KINDS, SPECS, auto_apply, propose  # noqa: F401
from hpe_core.store.models import Config, Recommendation, utcnow
from hpe_core.store.vocabulary import RecommendationStatus, Severity
from hpe_core.tenancy import activities, configs
from hpe_core.tenancy.configs import Catalog, settings_of
from hpe_core.tenancy.merge_patch import apply_merge_patch
from hpe_core.tenancy.settings import ATTRIBUTION_MODELS
from hpe_core.tenancy.settings_types import AutomationLevel
from hpe_core.tenancy.workspaces import Principal

log = logging.getLogger(__name__)

OPEN, APPLIED, DISMISSED, RESOLVED = RecommendationStatus
STATUS_FILTERS = (*RecommendationStatus, "all")
REOPEN_AFTER = dt.timedelta(days=7)
ENGINE_ACTOR = "engine"
RECOMMENDATION_APPLIED = "recommendation.applied"
RECOMMENDATION_DISMISSED = "recommendation.dismissed"
_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}

#: The moves a recommendation's status can make: open until applied, dismissed or
#: resolved, and back to open when raised again.
_MOVES = {
    OPEN: frozenset({APPLIED, DISMISSED, RESOLVED}),
    APPLIED: frozenset({OPEN}),
    DISMISSED: frozenset({OPEN}),
    RESOLVED: frozenset({OPEN}),
}


# --- Status changes ----------------------------------------------------------------------


def check_move(row: Recommendation, to: RecommendationStatus) -> None:
    """Raise unless ``row`` may move to status ``to``.

    :raises Conflict: it may not (e.g. applying a recommendation that is not open)
    """
    if to in _MOVES[RecommendationStatus(row.status)]:
        return
    if to == OPEN:
        raise Conflict("This recommendation is open already.")
    raise Conflict(f"This recommendation is {row.status}; only open ones can be {to}.")


def move(
    row: Recommendation, to: RecommendationStatus, *, now: dt.datetime, actor: str | None = None
) -> None:
    """Move a recommendation to status ``to``: the one place a status changes.

    ``applied_at``/``applied_by`` say who applied it and when, so they are set when it
    is applied (to ``now`` and ``actor``) and cleared on every other move.

    :raises Conflict: see :func:`check_move`
    """
    check_move(row, to)
    row.status, row.updated_at = to, now
    row.applied_at, row.applied_by = (now, actor) if to == APPLIED else (None, None)


def log_activity(session: Session, config: Config, type_: str, actor: str, data: dict) -> None:
    """Record what happened to a recommendation (or a guardrail) in the activity log."""
    activities.record(
        session,
        workspace_id=config.workspace_id,
        config_id=config.id,
        type=type_,
        actor=actor,
        data=data,
    )


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
                Recommendation.config_id == config.id, Recommendation.kind.in_(RULE_KINDS)
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
        if key not in seen and row.status == OPEN:
            move(row, RESOLVED, now=now)
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
    if row is not None and row.status != OPEN:
        move(row, OPEN, now=now)
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
            status=OPEN,
            created_at=now,
            updated_at=now,
            **content,
        )
        session.add(row)
        return row
    reopen = row.status == RESOLVED or _raised_again(row, proposal, config.settings, now)
    if row.status in (APPLIED, DISMISSED) and not reopen:
        return row
    changed = any(getattr(row, name) != value for name, value in content.items())
    if reopen:
        move(row, OPEN, now=now)
    if changed or reopen:
        for name, value in content.items():
            setattr(row, name, value)
        row.updated_at = now
    return row


def _raised_again(
    row: Recommendation, proposal: Proposal, settings: dict, now: dt.datetime
) -> bool:
    if row.status == APPLIED:
        since = row.applied_at or row.updated_at
        changes_settings = proposal.patch is not None and (
            apply_merge_patch(settings, proposal.patch) != settings
        )
        return changes_settings and now - since >= REOPEN_AFTER
    if row.status == DISMISSED:
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
    session: Session, principal: Principal, config_id: uuid.UUID, *, status: str = OPEN
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
    activity records its kind, evidence and patch. A kind whose spec rebases its patch
    (list patches: the actions, the channel exclusions) has it rebuilt on the current
    settings, so applying two recommendations in turn keeps both changes.

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
    check_move(row, APPLIED)
    patch = _rebase(row, config)
    config = _update_settings(session, principal, catalog, config, patch)
    move(row, APPLIED, now=now, actor=principal.actor)
    row.patch = patch
    log_activity(
        session,
        config,
        RECOMMENDATION_APPLIED,
        principal.actor,
        {
            "recommendation_id": str(row.id),
            "kind": row.kind,
            "subject": row.subject,
            "evidence": row.evidence,
            "patch": patch,
        },
    )
    session.flush()
    return row, config


def _rebase(row: Recommendation, config: Config) -> dict:
    """The patch to apply now: rebuilt on the current settings when its kind says so."""
    spec = SPECS.get(row.kind)
    if spec is None or spec.rebase is None:
        return row.patch
    return spec.rebase(row, settings_of(config))


def _update_settings(
    session: Session, principal: Principal, catalog: Catalog, config: Config, patch: dict
) -> Config:
    """Apply the patch as a PATCH would; invalid now means the settings moved on.

    :raises Conflict: the patched settings are not valid (nothing was changed)
    """
    try:
        return configs.update(session, principal, catalog, config.id, settings_patch=patch)
    except InvalidInput as exc:
        raise Conflict(
            "The settings changed since this recommendation was made and its patch no "
            f"longer applies: {exc.message} Nothing was changed.",
            exc.errors,
        ) from exc


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
    move(row, DISMISSED, now=now)
    log_activity(
        session,
        config,
        RECOMMENDATION_DISMISSED,
        principal.actor,
        {"recommendation_id": str(row.id), "kind": row.kind, "subject": row.subject},
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
        for row in list_for(session, principal, config.id, status=OPEN)
        if auto_apply(row.kind, row.patch)
    ]
    applied = []
    for row in candidates:
        if settings_of(config).automation != AutomationLevel.AUTONOMOUS:
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
    settings = settings_of(config)
    return Catalog(
        channels=dict.fromkeys([*channels, *settings.channels]),
        attribution_models=dict.fromkeys(
            [*attribution_models, *ATTRIBUTION_MODELS, settings.attribution.model]
        ),
    )
