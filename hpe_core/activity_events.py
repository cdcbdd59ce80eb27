"""Announce committed activities and recommendation status changes to the plugins.

Every stage logs what it does as activities (``model.updated``, ``config.updated``,
``guardrail.*``...), each in the transaction of the change it describes. Rather than
have every stage call a hook after its commit, :func:`watch` listens to the sessions of a
runtime: the activity rows and recommendation status changes a transaction flushed are
kept on the session and announced once it commits (``hpe_on_activity``,
``hpe_on_recommendation_changed``, through :func:`hpe_core.events.notify`), and dropped
if it rolls back. Event sinks (``plugins.event_sinks``: outgoing webhooks) build on them.

Activities inserted without the ORM (``activities.record_once``, e.g.
``outcome.unweighted_type``) are not announced.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from hpe_core.events import notify
from hpe_core.store.models import Activity, Recommendation, utcnow

_PENDING = "hpe_announce"


@dataclasses.dataclass(frozen=True)
class ActivityEvent:
    """One committed activity (a row of the activity log), as ``hpe_on_activity`` gets it.

    :param config_id: None for a workspace's own activities (e.g. a webhook endpoint
        disabled)
    :param actor: an API key prefix, ``user:<email>``, ``cli`` or ``engine``
    :param data: the activity's details, as stored
    """

    id: uuid.UUID
    workspace_id: str
    config_id: uuid.UUID | None
    type: str
    actor: str
    data: Mapping
    created_at: dt.datetime

    @classmethod
    def of(cls, row: Activity) -> ActivityEvent:
        return cls(
            id=row.id,
            workspace_id=row.workspace_id,
            config_id=row.config_id,
            type=row.type,
            actor=row.actor,
            data=dict(row.data or {}),
            created_at=row.created_at or utcnow(),
        )


@dataclasses.dataclass(frozen=True)
class RecommendationChange:
    """A recommendation that was raised (``status`` open, ``previous_status`` None or
    what it was before it opened again), applied, dismissed or resolved, once committed.

    :param kind: e.g. ``retire_action``; ``subject`` what it is about (an action id)
    :param severity: ``info``, ``warning`` or ``critical``
    :param patch: the settings merge patch it proposes, or None (an alarm)
    :param applied_by: who applied it (a key prefix, ``user:<email>`` or ``engine``)
    """

    id: uuid.UUID
    workspace_id: str
    config_id: uuid.UUID
    kind: str
    subject: str
    severity: str
    title: str
    detail: str
    status: str
    previous_status: str | None
    patch: Mapping | None
    applied_by: str | None

    @classmethod
    def of(cls, row: Recommendation, previous: str | None) -> RecommendationChange:
        return cls(
            id=row.id,
            workspace_id=row.workspace_id,
            config_id=row.config_id,
            kind=row.kind,
            subject=row.subject or "",
            severity=row.severity,
            title=row.title,
            detail=row.detail or "",
            status=row.status,
            previous_status=previous,
            patch=dict(row.patch) if row.patch is not None else None,
            applied_by=row.applied_by,
        )


def watch(session_factory, pm) -> None:
    """Announce what the sessions of ``session_factory`` commit to ``pm``'s hooks."""
    event.listen(session_factory, "after_flush", _collect)
    event.listen(session_factory, "after_rollback", _drop)

    def announce(session: Session) -> None:
        for item in session.info.pop(_PENDING, ()):
            if isinstance(item, ActivityEvent):
                notify(pm.hook.hpe_on_activity, activity=item)
            else:
                notify(pm.hook.hpe_on_recommendation_changed, recommendation=item)

    event.listen(session_factory, "after_commit", announce)


def _collect(session: Session, _flush_context) -> None:
    # after_flush still shows the flushed objects as new/dirty, with their history.
    found = []
    for row in session.new:
        if isinstance(row, Activity):
            found.append(ActivityEvent.of(row))
        elif isinstance(row, Recommendation):
            found.append(RecommendationChange.of(row, None))
    for row in session.dirty:
        if isinstance(row, Recommendation):
            history = inspect(row).attrs.status.history
            if history.added and history.deleted and history.added[0] != history.deleted[0]:
                found.append(RecommendationChange.of(row, history.deleted[0]))
    if found:
        session.info.setdefault(_PENDING, []).extend(found)


def _drop(session: Session) -> None:
    session.info.pop(_PENDING, None)
