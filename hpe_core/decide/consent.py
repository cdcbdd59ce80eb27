"""Consent per user and channel: an unsubscribe, a hard bounce or a spam complaint stops
a channel for that user in the whole workspace.

Consent is granted by default (HPE is called by tools that already hold the opt-in); a
row exists only once a user withdrew it (or restored it). The decision pipeline asks
:func:`allowed` before choosing anything, so a user who unsubscribed from email gets
``action_id: null, reason: "no_consent"`` for email decisions.
"""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hpe_core.errors import InvalidInput
from hpe_core.store.models import Consent, utcnow
from hpe_core.store.vocabulary import WITHDRAWN_CONSENT, ConsentStatus
from hpe_core.tenancy import activities

CONSENT_CHANGED = "consent.changed"
#: The longest ``source`` kept (the column's length).
_SOURCE_LENGTH = 64


_CONSENTS = Consent.__table__
# Prebuilt Core statement on the decision hot path: building an ORM select per request
# cost more than the lookup itself.
_STATUS = select(_CONSENTS.c.status).where(
    _CONSENTS.c.workspace_id == bindparam("workspace_id"),
    _CONSENTS.c.channel == bindparam("channel"),
    _CONSENTS.c.user_id == bindparam("user_id"),
)


def status_of(session: Session, workspace_id: str, channel: str, user_id: str) -> ConsentStatus:
    """``subscribed`` (the default) or the recorded withdrawal (one indexed lookup)."""
    status = (
        session.connection()
        .execute(_STATUS, {"workspace_id": workspace_id, "channel": channel, "user_id": user_id})
        .scalar()
    )
    return ConsentStatus(status) if status else ConsentStatus.SUBSCRIBED


_ANY_WITHDRAWN = (
    select(_CONSENTS.c.user_id)
    .where(
        _CONSENTS.c.workspace_id == bindparam("workspace_id"),
        _CONSENTS.c.channel == bindparam("channel"),
        _CONSENTS.c.status.in_(WITHDRAWN_CONSENT),
    )
    .limit(1)
)
#: Seconds a process trusts "nobody in this workspace withdrew consent on this channel".
#: Most traffic is on such channels, and knowing it saves the per-decision lookup; the
#: first withdrawal ever reaches other processes within this delay (this one at once).
NO_WITHDRAWALS_TTL = 5.0
_no_withdrawals: dict[tuple[str, str], float] = {}


def allowed(session: Session, workspace_id: str, channel: str, user_id: str) -> bool:
    """Whether the channel may reach the user."""
    key = (workspace_id, channel)
    checked = _no_withdrawals.get(key)
    if checked is not None and time.monotonic() - checked < NO_WITHDRAWALS_TTL:
        return True
    params = {"workspace_id": workspace_id, "channel": channel}
    if session.connection().execute(_ANY_WITHDRAWN, params).first() is None:
        _no_withdrawals[key] = time.monotonic()
        return True
    _no_withdrawals.pop(key, None)
    return not status_of(session, workspace_id, channel, user_id).withdrawn


def set_status(
    session: Session,
    *,
    workspace_id: str,
    channel: str,
    user_id: str,
    status: str,
    source: str,
    config_id=None,
    now: dt.datetime | None = None,
) -> bool:
    """Record a user's consent for a channel (an upsert; commit with the caller).

    A withdrawal never downgrades another withdrawal's reason (a complaint stays a
    complaint when a bounce follows); ``subscribed`` restores consent.

    :returns: whether anything changed (the caller fires ``hpe_on_consent_changed``)
    :raises InvalidInput: for an unknown status
    """
    if status not in tuple(ConsentStatus):
        raise InvalidInput(f"Consent status must be one of: {', '.join(ConsentStatus)}.")
    status = ConsentStatus(status)
    _no_withdrawals.pop((workspace_id, channel), None)  # this process sees it at once
    now = now or utcnow()
    source = source[:_SOURCE_LENGTH]
    row = _locked_row(session, workspace_id, channel, user_id)
    if row is None:
        changed = status.withdrawn and _insert(
            session, workspace_id, channel, user_id, status, source, now
        )
    else:
        changed = _update(row, status, source, now)
    if changed and config_id is not None:
        activities.record(
            session,
            workspace_id=workspace_id,
            config_id=config_id,
            type=CONSENT_CHANGED,
            actor=source,
            data={"channel": channel, "user_id": user_id, "status": status},
        )
    return changed


def _locked_row(session: Session, workspace_id: str, channel: str, user_id: str) -> Consent | None:
    """The user's consent row for the channel, locked until the transaction ends."""
    return session.scalar(
        select(Consent)
        .where(
            Consent.workspace_id == workspace_id,
            Consent.channel == channel,
            Consent.user_id == user_id,
        )
        .with_for_update()
    )


def _insert(
    session: Session,
    workspace_id: str,
    channel: str,
    user_id: str,
    status: ConsentStatus,
    source: str,
    now: dt.datetime,
) -> bool:
    """Store a first withdrawal; False when a concurrent request stored one first."""
    try:
        with session.begin_nested():
            session.add(
                Consent(
                    workspace_id=workspace_id,
                    channel=channel,
                    user_id=user_id,
                    status=status,
                    source=source,
                    updated_at=now,
                )
            )
    except IntegrityError:  # a concurrent request recorded it first
        return False
    return True


def _update(row: Consent, status: ConsentStatus, source: str, now: dt.datetime) -> bool:
    """Change a stored status; a withdrawal after a withdrawal keeps the first reason."""
    if row.status == status or (status.withdrawn and row.status in WITHDRAWN_CONSENT):
        return False
    row.status, row.source, row.updated_at = status, source, now
    return True
