"""The activity log (FR-003): every change and every notable event, with who and when."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from hpe_core.store.db import dialect_insert
from hpe_core.store.models import Activity, utcnow

# Types written here; the loop's stages name their own (model.updated, guardrail.*, ...).
CONFIG_CREATED = "config.created"
CONFIG_UPDATED = "config.updated"
CONFIG_STATUS_CHANGED = "config.status_changed"
#: Outcomes of a type that ``reward.events`` does not list were accepted: they are kept
#: and counted, but weigh nothing. Logged once per configuration and type.
OUTCOME_UNWEIGHTED_TYPE = "outcome.unweighted_type"


def record(
    session: Session,
    *,
    workspace_id: str,
    config_id: uuid.UUID | None,
    type: str,
    actor: str,
    data: dict | None = None,
) -> Activity:
    """Add one activity to the session (committed with the change it describes)."""
    activity = Activity(
        workspace_id=workspace_id, config_id=config_id, type=type, actor=actor, data=data or {}
    )
    session.add(activity)
    return activity


def record_once(
    session: Session,
    *,
    key: str,
    workspace_id: str,
    config_id: uuid.UUID,
    type: str,
    actor: str,
    data: dict | None = None,
) -> bool:
    """Add an activity unless the one with this ``key`` was ever recorded.

    The id is derived from the configuration, the type and the key (UUID 5), and the
    INSERT ignores an existing id: concurrent requests in any number of processes record
    it exactly once, without a read first.

    :returns: True if this call recorded it
    """
    table = Activity.__table__
    statement = (
        dialect_insert(session, table)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(table.c.id)
    )
    inserted = session.execute(
        statement,
        {
            "id": uuid.uuid5(config_id, f"{type}:{key}"),
            "workspace_id": workspace_id,
            "config_id": config_id,
            "type": type,
            "actor": actor,
            "data": data or {},
            "created_at": utcnow(),
        },
    ).first()
    return inserted is not None


def query(
    session: Session,
    config_id: uuid.UUID,
    *,
    type: str | None = None,
    actor: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Select:
    """Activities of one configuration, newest first, optionally filtered.

    ``type`` matches exactly, or by family when it ends in ``.*`` (``config.*``);
    ``actor`` exactly; ``since`` inclusive, ``until`` exclusive.
    """
    statement = select(Activity).where(Activity.config_id == config_id)
    return _filtered(statement, type, actor, since, until)


def workspace_query(
    session: Session,
    workspace_id: str,
    *,
    type: str | None = None,
    actor: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Select:
    """Every activity of a workspace (its people, keys and secrets, and every
    configuration's), newest first, filtered like :func:`query`."""
    statement = select(Activity).where(Activity.workspace_id == workspace_id)
    return _filtered(statement, type, actor, since, until)


def _filtered(statement: Select, type, actor, since, until) -> Select:
    if type:
        if type.endswith(".*"):
            statement = statement.where(Activity.type.startswith(type[:-1], autoescape=True))
        else:
            statement = statement.where(Activity.type == type)
    if actor:
        statement = statement.where(Activity.actor == actor)
    if since is not None:
        statement = statement.where(Activity.created_at >= since)
    if until is not None:
        statement = statement.where(Activity.created_at < until)
    return statement.order_by(Activity.created_at.desc(), Activity.id.desc())


def types_and_actors(
    session: Session, config_id: uuid.UUID | None = None, *, workspace_id: str | None = None
) -> tuple[list[str], list[str]]:
    """The activity types and actors a configuration's (or a workspace's) log holds, for
    filter menus."""
    scope = (
        Activity.config_id == config_id
        if config_id is not None
        else Activity.workspace_id == workspace_id
    )
    types = session.scalars(select(Activity.type).where(scope).distinct())
    actors = session.scalars(select(Activity.actor).where(scope).distinct())
    return sorted(types), sorted(actors)
