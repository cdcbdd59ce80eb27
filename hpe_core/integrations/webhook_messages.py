"""The outbox of outgoing webhooks: one message per event and subscribed endpoint, posted
one attempt at a time, each attempt logged.

:func:`publish` stores a message for every enabled endpoint of the workspace that
subscribes to the event (commit, then enqueue each id). A job then calls
:func:`attempt`, which signs the message the Standard Webhooks way
(:mod:`.webhook_signing`) and posts it through the outbound policy
(:func:`hpe_core.deliver.outbound.post`: the endpoint's URL is a tenant's, so its
addresses are checked again on every attempt, whatever they were at registration, and no
redirect is followed):

- a 2xx answer delivers it (and clears the endpoint's failure record);
- anything else (another status, a redirect, a timeout, a refused connection, an address
  the policy refuses) is a failed attempt: the job retries it later (the delays are the
  worker's, ``worker.retry``) until ``max_attempts``;
- an endpoint whose failures began a day ago (:data:`DISABLE_AFTER`) or more is disabled
  at its next failure, with a ``webhook_endpoint.disabled`` activity; its unsettled
  messages are then given up on.

The attempt is counted (committed) before the post, so a worker killed mid-post cannot
retry forever; a message already settled is skipped: jobs run at least once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import http.client
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import NamedTuple

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from hpe_core.deliver import outbound
from hpe_core.integrations import webhook_endpoints, webhook_signing
from hpe_core.store.models import WebhookAttempt, WebhookEndpoint, WebhookMessage, utcnow
from hpe_core.store.vocabulary import WebhookEndpointStatus, WebhookMessageStatus
from hpe_core.tenancy import activities

log = logging.getLogger(__name__)

#: An endpoint failing for this long (every attempt since) is disabled.
DISABLE_AFTER = dt.timedelta(days=1)
ENDPOINT_DISABLED = "webhook_endpoint.disabled"
#: Seconds to wait for an endpoint's answer.
TIMEOUT_SECONDS = 10.0
#: How much of an answer's body the attempt log keeps.
RESPONSE_EXCERPT = 1000
USER_AGENT = "HPE-Webhooks/1"
_SETTLED = (WebhookMessageStatus.DELIVERED, WebhookMessageStatus.FAILED)


class Outcome(enum.StrEnum):
    """What one :func:`attempt` did."""

    DELIVERED = "delivered"
    #: A failed attempt: try again later.
    RETRY = "retry"
    #: Given up on (the last attempt, or the endpoint is disabled or gone).
    FAILED = "failed"
    #: Already settled: jobs run at least once.
    SKIPPED = "skipped"


@dataclasses.dataclass(frozen=True)
class AttemptReport:
    """What :func:`attempt` did, and how many attempts the message has had."""

    outcome: Outcome
    attempts: int = 0
    error: str | None = None


class Answer(NamedTuple):
    """What an endpoint answered: its status (None when it did not answer), the first
    characters of its body, or the error that stopped the request."""

    status_code: int | None
    body: str | None
    error: str | None


# --- Publishing ---------------------------------------------------------------------------


def jsonable(value: object) -> object:
    """``value`` with UUIDs, dates, decimals and enums made JSON (for the stored payload)."""
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def publish(
    session: Session,
    workspace_id: str,
    event_type: str,
    data: Mapping,
    *,
    endpoint_ids: list[uuid.UUID] | None = None,
    now: dt.datetime | None = None,
) -> list[uuid.UUID]:
    """Store one message of ``event_type`` for each subscribed endpoint (commit with the
    caller, then enqueue the ids).

    :param endpoint_ids: the endpoints to post to (default: the workspace's subscribers)
    :returns: the new messages' ids
    """
    now = now or utcnow()
    if endpoint_ids is None:
        endpoint_ids = webhook_endpoints.subscribers(session, workspace_id, event_type)
    payload = {"type": event_type, "timestamp": now.isoformat(), "data": jsonable(data)}
    ids = []
    for endpoint_id in endpoint_ids:
        message = WebhookMessage(
            id=uuid.uuid4(),
            workspace_id=workspace_id,
            endpoint_id=endpoint_id,
            event_type=event_type,
            payload=payload,
            status=WebhookMessageStatus.PENDING,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        session.add(message)
        ids.append(message.id)
    session.flush()
    return ids


# --- Attempting -----------------------------------------------------------------------------


def body_of(message: WebhookMessage) -> bytes:
    """The exact bytes posted (the same on every attempt)."""
    return json.dumps(message.payload, separators=(",", ":"), sort_keys=True).encode()


def attempt(
    session: Session,
    message_id: uuid.UUID,
    *,
    secret_key: str,
    max_attempts: int,
    policy: outbound.OutboundPolicy,
    allow_http: bool = False,
    now: Callable[[], dt.datetime] = utcnow,
) -> AttemptReport:
    """Post one message once and record what happened (commits).

    :param secret_key: the app's ``SECRET_KEY`` (endpoint secrets derive from it)
    :param max_attempts: after this many failed attempts the message is given up on
    :param policy: the operator's outbound policy (``OUTBOUND_ALLOWED_NETWORKS``)
    :param allow_http: ``WEBHOOK_ALLOW_HTTP``: ``http://`` to any host the policy allows
    :param now: the clock (tests move it)
    """
    message = session.get(WebhookMessage, message_id, populate_existing=True)
    if message is None or message.status in _SETTLED:
        return AttemptReport(Outcome.SKIPPED, message.attempts if message else 0)
    endpoint = session.get(WebhookEndpoint, message.endpoint_id, populate_existing=True)
    if endpoint.status != WebhookEndpointStatus.ENABLED:
        return _give_up(session, message, "The endpoint is disabled.", now())
    message.attempts += 1
    message.updated_at = started = now()
    session.commit()
    body = body_of(message)
    msg_id = webhook_signing.message_id(message.id)
    secret = webhook_signing.secret_for(secret_key, endpoint.secret_nonce)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **webhook_signing.headers(secret, msg_id, int(started.timestamp()), body),
    }
    clock = time.perf_counter()
    answer = post_json(
        endpoint.url, body, headers, policy=policy, allow_http=allow_http, timeout=TIMEOUT_SECONDS
    )
    duration_ms = (time.perf_counter() - clock) * 1000
    session.add(
        WebhookAttempt(
            id=uuid.uuid4(),
            message_id=message.id,
            endpoint_id=endpoint.id,
            attempt=message.attempts,
            status_code=answer.status_code,
            response=answer.body,
            error=answer.error,
            duration_ms=round(duration_ms, 3),
            created_at=started,
        )
    )
    if answer.status_code is not None and 200 <= answer.status_code < 300:
        return _delivered(session, message, endpoint, now())
    return _failed(session, message, endpoint, _why(answer), max_attempts, now())


def _why(answer: Answer) -> str:
    if answer.status_code is None:
        return answer.error or "no answer"
    return f"HTTP {answer.status_code}"


def _delivered(session, message, endpoint, now) -> AttemptReport:
    message.status, message.delivered_at, message.updated_at = (
        WebhookMessageStatus.DELIVERED,
        now,
        now,
    )
    endpoint.failing_since = None
    session.commit()
    return AttemptReport(Outcome.DELIVERED, message.attempts)


def _failed(session, message, endpoint, why: str, max_attempts: int, now) -> AttemptReport:
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    if now - endpoint.failing_since >= DISABLE_AFTER:
        _disable(session, endpoint, now)
        return _give_up(session, message, f"{why}; the endpoint was disabled.", now)
    if message.attempts >= max_attempts:
        return _give_up(session, message, f"{why} after {message.attempts} attempts.", now)
    message.status, message.updated_at = WebhookMessageStatus.RETRYING, now
    session.commit()
    return AttemptReport(Outcome.RETRY, message.attempts, why)


def _give_up(session, message, why: str, now) -> AttemptReport:
    message.status, message.updated_at = WebhookMessageStatus.FAILED, now
    session.commit()
    log.info("webhook message %s given up: %s", message.id, why)
    return AttemptReport(Outcome.FAILED, message.attempts, why)


def _disable(session: Session, endpoint: WebhookEndpoint, now: dt.datetime) -> None:
    since = endpoint.failing_since
    reason = f"Every delivery failed since {since:%Y-%m-%d %H:%M} UTC."
    webhook_endpoints.disable(endpoint, reason, now)
    activities.record(
        session,
        workspace_id=endpoint.workspace_id,
        config_id=None,
        type=ENDPOINT_DISABLED,
        actor="engine",
        data={
            "endpoint_id": str(endpoint.id),
            "url": endpoint.url,
            "failing_since": since.isoformat(),
            "reason": reason,
        },
    )
    log.warning("webhook endpoint %s disabled: %s", endpoint.id, reason)


def post_json(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    policy: outbound.OutboundPolicy,
    allow_http: bool,
    timeout: float,
) -> Answer:
    """POST ``body`` to ``url`` through :func:`hpe_core.deliver.outbound.post`; whatever
    happens is an :class:`Answer` (never raises). A redirect is an answer (3xx, a failed
    attempt), never followed: the signature was made for the endpoint's URL."""
    try:
        reply = outbound.post(
            url, body, headers, policy=policy, timeout=timeout, allow_http=allow_http
        )
    except outbound.OutboundRefused as exc:
        # Nothing was sent. Not the endpoint's fault alone: the operator may allow its
        # network later, so this is a failed attempt like any other, retried.
        return Answer(
            None, None, f"Refused by the outbound policy: {exc.message}"[:RESPONSE_EXCERPT]
        )
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Answer(None, None, f"{type(exc).__name__}: {exc}"[:RESPONSE_EXCERPT])
    return Answer(reply.status, reply.body.decode("utf-8", "replace")[:RESPONSE_EXCERPT], None)


# --- Reading and sweeping ---------------------------------------------------------------------


def attempts_query(workspace_id: str, endpoint_id: uuid.UUID) -> Select:
    """An endpoint's attempts, newest first (the workspace's only)."""
    return (
        select(WebhookAttempt)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookAttempt.endpoint_id)
        .where(
            WebhookAttempt.endpoint_id == endpoint_id,
            WebhookEndpoint.workspace_id == workspace_id,
        )
        .order_by(WebhookAttempt.created_at.desc(), WebhookAttempt.attempt.desc())
    )


def stranded(
    session: Session,
    *,
    now: dt.datetime | None = None,
    pending_for: dt.timedelta = dt.timedelta(minutes=5),
    retrying_for: dt.timedelta = dt.timedelta(hours=12),
    limit: int = 1000,
) -> list[uuid.UUID]:
    """Unsettled messages whose job was lost (e.g. Redis was down when they were
    enqueued, or restarted since): never attempted for ``pending_for``, or waiting for a
    retry longer than the longest retry delay."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(WebhookMessage.id)
            .where(
                or_(
                    (WebhookMessage.status == WebhookMessageStatus.PENDING)
                    & (WebhookMessage.updated_at < now - pending_for),
                    (WebhookMessage.status == WebhookMessageStatus.RETRYING)
                    & (WebhookMessage.updated_at < now - retrying_for),
                )
            )
            .order_by(WebhookMessage.updated_at)
            .limit(limit)
        )
    )
