"""The activity log (FR-003): every change and every notable event, with who and when."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from hpe_core.models import Activity

# Types written by the core service; later stages add decision/outcome/model types.
CONFIG_CREATED = "config.created"
CONFIG_UPDATED = "config.updated"
CONFIG_STATUS_CHANGED = "config.status_changed"


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


def query(session: Session, config_id: uuid.UUID, *, type: str | None = None) -> Select:
    """Activities of one configuration, newest first, optionally of one type.

    ``type`` matches exactly, or by family when it ends in ``.*`` (``config.*``).
    """
    statement = select(Activity).where(Activity.config_id == config_id)
    if type:
        if type.endswith(".*"):
            statement = statement.where(Activity.type.startswith(type[:-1], autoescape=True))
        else:
            statement = statement.where(Activity.type == type)
    return statement.order_by(Activity.created_at.desc(), Activity.id.desc())
