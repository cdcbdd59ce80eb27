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
from enum import StrEnum

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
from hpe_core.store.vocabulary import DeliveryStatus
from hpe_core.tenancy import activities
from hpe_core.tenancy.configs import settings_of

log = logging.getLogger(__name__)

DELIVERY_FAILED = "delivery.failed"

__all__ = [
    "AttemptOutcome",
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


class AttemptOutcome(StrEnum):
    """What one :func:`attempt` did."""

    SENT = "sent"
    #: A transient failure: try again after ``retry_after`` seconds.
    RETRY = "retry"
    #: For good (a permanent failure, or the last retry).
    FAILED = "failed"
    #: Already settled (sent or failed): jobs run at least once.
    SKIPPED = "skipped"


#: Delivery statuses after which nothing more is attempted.
_SETTLED = (DeliveryStatus.SENT, DeliveryStatus.FAILED)


@dataclasses.dataclass(frozen=True)
class AttemptReport:
    """What one :func:`attempt` did, and for a retry when and why."""

    outcome: AttemptOutcome
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
        status=DeliveryStatus.PENDING,
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
                DeliveryRow.status == DeliveryStatus.PENDING,
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
    action = settings_of(config).actions_by_id.get(row.action_id)
    # An action removed from the settings since the decision: its id is all that is known.
    document = action.document if action is not None else {"id": row.action_id}
    content = action.content.get(row.channel) if action is not None else None
    delivery = Delivery(
        id=row.id,
        decision_id=row.decision_id,
        workspace_id=row.workspace_id,
        config_id=row.config_id,
        channel=row.channel,
        user_id=row.user_id,
        action_id=row.action_id,
        action=document,
        content=content or {},
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
    if row.status in _SETTLED:
        return AttemptReport(AttemptOutcome.SKIPPED)
    row.attempts += 1
    row.updated_at = now or utcnow()
    session.commit()
    try:
        result = _send(pm, channels.get(row.channel), delivery)
    except PermanentDeliveryError as exc:
        return _fail(session, pm, row, delivery, exc, "permanent")
    except TransientDeliveryError as exc:
        return _retry_or_fail(session, pm, row, delivery, exc, max_attempts)
    except Exception as exc:  # noqa: BLE001 - a plugin bug: retried, then failed and logged
        log.exception("delivery %s: unexpected error in the %s plugin", row.id, row.channel)
        session.rollback()
        transient = TransientDeliveryError(f"Unexpected error in the {row.channel} plugin: {exc!r}")
        return _retry_or_fail(session, pm, row, delivery, transient, max_attempts)
    return _sent(session, pm, row, delivery, result, now)


def _send(pm, connector, delivery: Delivery) -> DeliveryResult:
    """Hand the delivery to the plugins (``hpe_deliver``: by default the connector's send).

    :raises PermanentDeliveryError: no connector, no plugin delivered, or a wrong result
    :raises TransientDeliveryError: what the plugin raised (retried)
    """
    channel = delivery.channel
    if connector is None:
        raise PermanentDeliveryError(f"No installed plugin provides the {channel} channel.")
    result = pm.hook.hpe_deliver(delivery=delivery, connector=connector)
    if result is None:
        raise PermanentDeliveryError(f"No plugin delivered on the {channel} channel.")
    if not isinstance(result, DeliveryResult):
        raise PermanentDeliveryError(f"The {channel} plugin returned {result!r}.")
    return result


def _sent(session, pm, row, delivery, result: DeliveryResult, now) -> AttemptReport:
    row.status = DeliveryStatus.SENT
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
    return AttemptReport(AttemptOutcome.SENT)


def _retry_or_fail(
    session, pm, row, delivery, exc: TransientDeliveryError, max_attempts: int
) -> AttemptReport:
    """A transient failure: retry later, unless this was the last attempt."""
    if row.attempts >= max_attempts:
        return _fail(session, pm, row, delivery, exc, f"gave up after {row.attempts} attempts")
    row.status, row.error = DeliveryStatus.RETRYING, exc.message
    session.commit()
    notify(pm.hook.hpe_on_delivery_failed, delivery=delivery, error=exc, final=False)
    return AttemptReport(AttemptOutcome.RETRY, retry_after=exc.retry_after, error=exc.message)


def _fail(session, pm, row, delivery, exc, why: str) -> AttemptReport:
    row.status, row.error = DeliveryStatus.FAILED, exc.message
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
    return AttemptReport(AttemptOutcome.FAILED, error=exc.message)


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
