"""Scheduled audience exports: ship a configuration's audiences on a channel (``ads``: the
hashed customer lists of the actions) every N hours, without anyone running
``hpe ads export``.

A schedule is one row per configuration and channel. The sweepers (``hpe worker``, or
the API process without Redis) call :func:`claim_due` every minute: each due row is
claimed by moving its ``next_run_at`` on with a compare-and-set UPDATE, so however many
processes sweep, one of them gets each run; the claimed runs are queued as jobs that
call :func:`run`, which records what was exported (or why not).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hpe_core.errors import HpeError, InvalidInput, NotFound
from hpe_core.store.models import AudienceSchedule, utcnow
from hpe_core.tenancy import configs
from hpe_core.tenancy.workspaces import Principal

MIN_HOURS, MAX_HOURS = 1, 24 * 30


def exporting_channels(channels: Mapping[str, object]) -> list[str]:
    """The installed channels whose connector exports audiences (``export_audiences``)."""
    return sorted(name for name, c in channels.items() if hasattr(c, "export_audiences"))


def _check_channel(channels: Mapping[str, object], channel: str) -> None:
    if channel not in exporting_channels(channels):
        raise InvalidInput(
            "This channel does not export audiences.",
            {"channel": [f"One of: {', '.join(exporting_channels(channels)) or 'none'}."]},
        )


def put(
    session: Session,
    principal: Principal,
    channels: Mapping[str, object],
    config_id: uuid.UUID,
    channel: str,
    every_hours: int,
    *,
    now: dt.datetime | None = None,
) -> AudienceSchedule:
    """Export every ``every_hours`` hours, the first run at the next sweep (commit with the
    caller). A schedule that exists is changed: its next run is recomputed from now.

    :raises NotFound: another workspace's configuration
    :raises InvalidInput: a channel that exports no audiences, or hours out of range
    """
    now = now or utcnow()
    config = configs.get(session, principal, config_id)
    _check_channel(channels, channel)
    if not isinstance(every_hours, int) or not MIN_HOURS <= every_hours <= MAX_HOURS:
        raise InvalidInput(
            "Invalid schedule.", {"every_hours": [f"From {MIN_HOURS} to {MAX_HOURS} hours."]}
        )
    row = session.get(AudienceSchedule, (config.id, channel))
    if row is None:
        row = AudienceSchedule(
            config_id=config.id,
            channel=channel,
            workspace_id=config.workspace_id,
            created_at=now,
        )
        session.add(row)
    row.every_hours, row.next_run_at, row.updated_at = every_hours, now, now
    session.flush()
    return row


def of_config(
    session: Session, principal: Principal, config_id: uuid.UUID
) -> list[AudienceSchedule]:
    """A configuration's schedules, by channel."""
    config = configs.get(session, principal, config_id)
    return list(
        session.scalars(
            select(AudienceSchedule)
            .where(AudienceSchedule.config_id == config.id)
            .order_by(AudienceSchedule.channel)
        )
    )


def remove(session: Session, principal: Principal, config_id: uuid.UUID, channel: str) -> None:
    """Stop a schedule (commit with the caller).

    :raises NotFound: no such schedule
    """
    config = configs.get(session, principal, config_id)
    row = session.get(AudienceSchedule, (config.id, channel))
    if row is None:
        raise NotFound(f"No {channel} export schedule for this configuration.")
    session.delete(row)
    session.flush()


def claim_due(
    session: Session, *, now: dt.datetime | None = None, limit: int = 100
) -> list[tuple[uuid.UUID, str]]:
    """Claim the schedules due now (commits): each claimed run's next one is set, so no
    other sweeper claims it.

    :returns: ``(config_id, channel)`` of the runs this call claimed
    """
    now = now or utcnow()
    due = session.execute(
        select(
            AudienceSchedule.config_id,
            AudienceSchedule.channel,
            AudienceSchedule.next_run_at,
            AudienceSchedule.every_hours,
        )
        .where(AudienceSchedule.next_run_at <= now)
        .order_by(AudienceSchedule.next_run_at)
        .limit(limit)
    ).all()
    claimed = []
    for config_id, channel, seen, hours in due:
        moved = session.execute(
            update(AudienceSchedule)
            .where(
                AudienceSchedule.config_id == config_id,
                AudienceSchedule.channel == channel,
                AudienceSchedule.next_run_at == seen,
            )
            .values(next_run_at=now + dt.timedelta(hours=hours))
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount == 1:
            claimed.append((config_id, channel))
    session.commit()
    return claimed


def run(
    session: Session,
    channels: Mapping[str, object],
    config_id: uuid.UUID,
    channel: str,
    *,
    now: dt.datetime | None = None,
) -> list[dict]:
    """Export one configuration's audiences on a channel now, and record how it went on its
    schedule, if it has one (commits).

    :returns: what was exported, ``[{action_id, audience, rows, target}]``
    :raises HpeError: what the connector raised (recorded first)
    """
    now = now or utcnow()
    connector = channels.get(channel)
    try:
        if connector is None or not hasattr(connector, "export_audiences"):
            raise InvalidInput(f"No installed plugin exports {channel} audiences.")
        exported = connector.export_audiences(session, config_id)
    except HpeError as exc:
        session.rollback()
        _record(session, config_id, channel, now, None, exc.message)
        raise
    _record(session, config_id, channel, now, exported, None)
    return exported


def _record(session, config_id, channel, now, exported, error) -> None:
    row = session.get(AudienceSchedule, (config_id, channel))
    if row is not None:
        row.last_run_at, row.last_result, row.last_error = now, exported, error
        row.updated_at = now
    session.commit()
