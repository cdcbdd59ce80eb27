"""Delivery: hand a logged decision to its channel (render + send), with retries.

``request_delivery`` stores a pending delivery next to the decision (same transaction);
a job then calls :func:`attempt`, which asks the plugins (``hpe_deliver``: by default the
channel's connector) to send it. Transient failures are retried by the job's backend;
a permanent failure (or the last retry) marks the delivery failed and writes a
``delivery.failed`` activity. Personal data given for the delivery (the recipient's
address, template variables) is erased once the delivery is settled.

The values a connector sees (:class:`Delivery`, :class:`DeliveryResult`) belong to the
connector contract in :mod:`hpe_core.deliver.channels` and are re-exported here; tracking
links are signed in :mod:`hpe_core.deliver.tracking_links`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Iterator, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpe_core.deliver.channels import Delivery, DeliveryResult
from hpe_core.deliver.tracking_links import TrackingLinks
from hpe_core.errors import (
    NotFound,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from hpe_core.events import notify
from hpe_core.store.models import Config, Decision, utcnow
from hpe_core.store.models import Delivery as DeliveryRow
from hpe_core.tenancy import activities

log = logging.getLogger(__name__)

DELIVERY_FAILED = "delivery.failed"

__all__ = [
    "AttemptReport",
    "Delivery",
    "DeliveryResult",
    "TrackingLinks",
    "attempt",
    "load",
    "request_delivery",
    "sent_results",
    "stranded",
]


@dataclasses.dataclass(frozen=True)
class AttemptReport:
    """What one :func:`attempt` did: ``sent``, ``retry`` (after ``retry_after`` s),
    ``failed`` (for good) or ``skipped`` (already settled)."""

    outcome: str
    retry_after: float | None = None
    error: str | None = None


# --- Requesting and attempting deliveries -------------------------------------------------


def request_delivery(
    session: Session,
    *,
    workspace_id: str,
    config_id: uuid.UUID,
    decision_id: uuid.UUID,
    channel: str,
    user_id: str,
    action_id: str,
    recipient: Mapping | None = None,
    variables: Mapping | None = None,
) -> DeliveryRow:
    """Store a pending delivery for a decision just made (commit it with the decision)."""
    row = DeliveryRow(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        config_id=config_id,
        decision_id=decision_id,
        channel=channel,
        user_id=user_id,
        action_id=action_id,
        status="pending",
        attempts=0,
        recipient=dict(recipient or {}),
        variables=dict(variables or {}),
        result={},
    )
    session.add(row)
    return row


def stranded(
    session: Session, *, older_than_seconds: float, now: dt.datetime | None = None
) -> list[uuid.UUID]:
    """Deliveries stored but never attempted for a while: their job was lost (e.g. Redis
    was down when the decision was made), so the sweeper enqueues them again."""
    cutoff = (now or utcnow()) - dt.timedelta(seconds=older_than_seconds)
    return list(
        session.scalars(
            select(DeliveryRow.id)
            .where(
                DeliveryRow.status == "pending",
                DeliveryRow.attempts == 0,
                DeliveryRow.created_at < cutoff,
            )
            .limit(1000)
        )
    )


def load(session: Session, delivery_id: uuid.UUID) -> tuple[DeliveryRow, Delivery]:
    """The stored delivery and what its connector is given.

    :raises NotFound: if there is no such delivery
    """
    row = session.get(DeliveryRow, delivery_id, populate_existing=True)
    if row is None:
        raise NotFound(f"No delivery {delivery_id}.")
    decision = session.get(Decision, row.decision_id)
    config = session.get(Config, row.config_id)
    action = next((a for a in config.settings["actions"] if a["id"] == row.action_id), None)
    action = action or {"id": row.action_id}
    delivery = Delivery(
        id=row.id,
        decision_id=row.decision_id,
        workspace_id=row.workspace_id,
        config_id=row.config_id,
        channel=row.channel,
        user_id=row.user_id,
        action_id=row.action_id,
        action=action,
        content=(action.get("content") or {}).get(row.channel) or {},
        recipient=row.recipient or {},
        variables=row.variables or {},
        context=decision.context if decision is not None else {},
        attempt=row.attempts + 1,
    )
    return row, delivery


def attempt(
    session: Session,
    pm,
    channels: Mapping,
    delivery_id: uuid.UUID,
    *,
    max_attempts: int,
    now: dt.datetime | None = None,
) -> AttemptReport:
    """Try to send one delivery once, and record what happened (commits).

    The attempt is counted (committed) before sending, so a worker killed mid-send
    cannot retry forever. A settled delivery (sent or failed) is skipped: jobs run at
    least once.

    :param pm: the plugin manager (``hpe_deliver`` and the ``hpe_on_delivery*`` events)
    :param channels: channel name -> connector instance
    :param max_attempts: after this many transient failures the delivery fails for good
    """
    row, delivery = load(session, delivery_id)
    if row.status in ("sent", "failed"):
        return AttemptReport("skipped")
    row.attempts += 1
    row.updated_at = now or utcnow()
    session.commit()

    connector = channels.get(row.channel)
    transient = None
    try:
        if connector is None:
            raise PermanentDeliveryError(f"No installed plugin provides the {row.channel} channel.")
        result = pm.hook.hpe_deliver(delivery=delivery, connector=connector)
        if result is None:
            raise PermanentDeliveryError(f"No plugin delivered on the {row.channel} channel.")
        if not isinstance(result, DeliveryResult):
            raise PermanentDeliveryError(f"The {row.channel} plugin returned {result!r}.")
    except TransientDeliveryError as exc:
        transient = exc
    except PermanentDeliveryError as exc:
        return _fail(session, pm, row, delivery, exc, "permanent")
    except Exception as exc:  # noqa: BLE001 - a plugin bug: retried, then failed and logged
        log.exception("delivery %s: unexpected error in the %s plugin", row.id, row.channel)
        session.rollback()
        transient = TransientDeliveryError(f"Unexpected error in the {row.channel} plugin: {exc!r}")
    if transient is not None:
        if row.attempts >= max_attempts:
            why = f"gave up after {row.attempts} attempts"
            return _fail(session, pm, row, delivery, transient, why)
        row.status, row.error = "retrying", transient.message
        session.commit()
        notify(pm.hook.hpe_on_delivery_failed, delivery=delivery, error=transient, final=False)
        return AttemptReport("retry", retry_after=transient.retry_after, error=transient.message)

    row.status = "sent"
    row.sent_at = now or utcnow()
    row.error = None
    row.result = {
        "status": result.status,
        "provider_id": result.provider_id,
        **dict(result.detail),
    }
    row.recipient = row.variables = None  # personal data is not kept once settled
    session.commit()
    notify(pm.hook.hpe_on_delivered, delivery=delivery, result=result)
    return AttemptReport("sent")


def _fail(session, pm, row, delivery, exc, why: str) -> AttemptReport:
    row.status, row.error = "failed", exc.message
    row.recipient = row.variables = None
    activities.record(
        session,
        workspace_id=row.workspace_id,
        config_id=row.config_id,
        type=DELIVERY_FAILED,
        actor="engine",
        data={
            "delivery_id": str(row.id),
            "decision_id": str(row.decision_id),
            "channel": row.channel,
            "action_id": row.action_id,
            "attempts": row.attempts,
            "error": exc.message,
            "why": why,
        },
    )
    session.commit()
    log.warning("delivery %s failed (%s): %s", row.id, why, exc.message)
    notify(pm.hook.hpe_on_delivery_failed, delivery=delivery, error=exc, final=True)
    return AttemptReport("failed", error=exc.message)


def sent_results(
    session: Session,
    config_id: uuid.UUID,
    channel: str,
    action_id: str,
    since: dt.datetime,
) -> Iterator[Mapping]:
    """The ``result`` of every delivery of one action sent since ``since`` (for audiences)."""
    statement = (
        select(DeliveryRow.result)
        .where(
            DeliveryRow.config_id == config_id,
            DeliveryRow.channel == channel,
            DeliveryRow.action_id == action_id,
            DeliveryRow.sent_at >= since,
        )
        .execution_options(yield_per=1000)
    )
    yield from session.scalars(statement)
