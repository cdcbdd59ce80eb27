"""Delivery: hand a logged decision to its channel (render + send), with retries.

``request_delivery`` stores a pending delivery next to the decision (same transaction);
a job then calls :func:`attempt`, which asks the plugins (``hpe_deliver``: by default the
channel's connector) to send it. Transient failures are retried by the job's backend;
a permanent failure (or the last retry) marks the delivery failed and writes a
``delivery.failed`` activity. Personal data given for the delivery (the recipient's
address, template variables) is erased once the delivery is settled.

Tracking links (clicks, the open pixel, unsubscribe) are signed here with the app's
secret key, so the web layer can verify what a connector built.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Iterator, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpe_core import activities
from hpe_core.channels import notify
from hpe_core.errors import (
    InvalidInput,
    NotFound,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from hpe_core.models import Config, Decision, utcnow
from hpe_core.models import Delivery as DeliveryRow

log = logging.getLogger(__name__)

DELIVERY_FAILED = "delivery.failed"


@dataclasses.dataclass(frozen=True)
class Delivery:
    """What a connector gets to send: one decision, its content and its recipient.

    :param content: ``action["content"][channel]`` (the channel's part of the action)
    :param recipient: who to send to, e.g. ``{"email": ..., "name": ...}``
    :param variables: per-user template variables given with the decision
    :param attempt: 1 for the first try, 2 for the first retry...
    """

    id: uuid.UUID
    decision_id: uuid.UUID
    workspace_id: str
    config_id: uuid.UUID
    channel: str
    user_id: str
    action_id: str
    action: Mapping
    content: Mapping
    recipient: Mapping
    variables: Mapping
    context: Mapping
    attempt: int = 1


@dataclasses.dataclass(frozen=True)
class DeliveryResult:
    """What a connector reports after sending.

    :param status: ``sent`` (handed to the provider), ``rendered`` (content returned,
        nothing sent: the web channel) or ``queued`` (sent in a later batch: ads)
    :param provider_id: the provider's id for the message (e.g. SMTP Message-ID)
    :param detail: JSON-able facts kept with the delivery (never personal data in clear)
    """

    status: str = "sent"
    provider_id: str | None = None
    detail: Mapping = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class AttemptReport:
    """What one :func:`attempt` did: ``sent``, ``retry`` (after ``retry_after`` s),
    ``failed`` (for good) or ``skipped`` (already settled)."""

    outcome: str
    retry_after: float | None = None
    error: str | None = None


# --- Tracking links --------------------------------------------------------------------


class TrackingLinks:
    """Signed tracking URLs: ``/t/c/<token>`` (click), ``/t/o/<token>.gif`` (open pixel),
    ``/t/u/<token>`` (unsubscribe).

    A token holds the decision id (and, for a click, the *name* of one of the action's
    configured links, never a URL) and an HMAC-SHA256 of it under the app's secret key,
    with the kind as domain separator. Whoever forges or edits one gets a 404; the
    redirect target is read from the configuration at click time, so a click can only
    lead to a URL the action itself configures.
    """

    PATHS = {"click": "/t/c/{}", "open": "/t/o/{}.gif", "unsubscribe": "/t/u/{}"}

    def __init__(self, secret_key: str, base_url: str | None):
        if not secret_key:
            raise ValueError("A secret key is required to sign tracking links.")
        self._key = hashlib.sha256(b"hpe-tracking:" + secret_key.encode()).digest()
        self.base_url = (base_url or "").rstrip("/")

    def token(self, kind: str, decision_id: uuid.UUID, link: str | None = None) -> str:
        payload = {"d": str(decision_id)}
        if link is not None:
            payload["l"] = link
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._sign(kind, body)}"

    def url(self, kind: str, decision_id: uuid.UUID, link: str | None = None) -> str:
        return self.base_url + self.PATHS[kind].format(self.token(kind, decision_id, link))

    def verify(self, kind: str, token: str) -> tuple[uuid.UUID, str | None]:
        """The decision id and link name a token carries.

        :raises InvalidInput: if the token is malformed or its signature is wrong
        """
        body, _, signature = (token or "").partition(".")
        if not body or not hmac.compare_digest(signature, self._sign(kind, body)):
            raise InvalidInput("Invalid tracking link.")
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            return uuid.UUID(payload["d"]), payload.get("l")
        except (ValueError, KeyError, TypeError) as exc:  # pragma: no cover - signed by us
            raise InvalidInput("Invalid tracking link.") from exc

    def _sign(self, kind: str, body: str) -> str:
        mac = hmac.new(self._key, f"{kind}:{body}".encode(), hashlib.sha256).digest()
        return _b64(mac[:20])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


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
