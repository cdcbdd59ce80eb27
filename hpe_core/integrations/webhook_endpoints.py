"""Outgoing webhook endpoints: the ``/webhook-endpoints`` resource of a workspace.

An endpoint is a URL, the event types it subscribes to (:mod:`.event_types`) and a
signing secret, shown once when it is created (or rotated). It is ``enabled`` until a
person disables it, or until HPE does after a day of failed deliveries
(:mod:`.webhook_messages`); enabling it again starts afresh.

The subscribers of an event type are read often (every decision asks whether anyone
wants ``decision.created``): :data:`GENERATION` changes whenever this process changes an
endpoint, so a cache of subscriptions (``plugins.event_sinks``) is refreshed at once in
this process and within its time-to-live in the others.
"""

from __future__ import annotations

import datetime as dt
import itertools
import socket
import uuid
from collections.abc import Mapping

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from hpe_core.deliver import outbound
from hpe_core.deliver.outbound import OutboundPolicy
from hpe_core.errors import InvalidInput, NotFound
from hpe_core.integrations import webhook_signing
from hpe_core.integrations.event_types import check_subscriptions, matches
from hpe_core.store.models import (
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
    utcnow,
)
from hpe_core.store.vocabulary import WebhookEndpointStatus
from hpe_core.tenancy.workspaces import get_workspace

MAX_URL_LENGTH = 2000
MAX_ENDPOINTS_PER_WORKSPACE = 20
_generation = itertools.count(1)
#: Bumped by every change this process makes to an endpoint (see the module docstring).
GENERATION = 0


def _changed() -> None:
    global GENERATION
    GENERATION = next(_generation)


def check_url(url: object, *, policy: OutboundPolicy, allow_http: bool = False) -> str:
    """An endpoint URL, checked against the outbound policy (:mod:`hpe_core.deliver.
    outbound`) as far as it can be at registration: ``https://`` (``http://`` on a
    loopback host, or anywhere when ``allow_http``, ``WEBHOOK_ALLOW_HTTP``), no user or
    password, and a host whose addresses the policy allows.

    This is early feedback, not the guard: DNS can change after registration (and the
    operator's policy too), so every delivery attempt checks again
    (:func:`.webhook_messages.attempt`). A name that does not resolve now is accepted for
    the same reason: its attempts will fail, with the reason in their log, until it does.

    :raises InvalidInput: naming what is wrong, on ``url``
    """
    try:
        parts = outbound.check_url(url, allow_http=allow_http, max_length=MAX_URL_LENGTH)
        _check_addresses(parts.hostname, parts.port or _DEFAULT_PORTS[parts.scheme], policy)
    except outbound.OutboundRefused as exc:
        raise InvalidInput("Invalid endpoint URL.", {"url": [exc.message]}) from exc
    return url


_DEFAULT_PORTS = {"https": 443, "http": 80}


def _check_addresses(host: str, port: int, policy: OutboundPolicy) -> None:
    """:raises OutboundRefused: ``host`` resolves to an address the policy refuses"""
    try:
        policy.check_host(host, port)
    except outbound.OutboundRefused as exc:
        # Not resolving (yet) is no danger: the delivery resolves again (module docstring).
        if not isinstance(exc.__cause__, socket.gaierror):
            raise


def create(
    session: Session,
    workspace_id: str,
    secret_key: str,
    *,
    url: str,
    event_types: list[str],
    description: str = "",
    policy: OutboundPolicy,
    allow_http: bool = False,
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint (commit with the caller).

    :param policy: the operator's outbound policy (``OUTBOUND_ALLOWED_NETWORKS``)
    :returns: the row and its secret, which is shown only this once
    :raises InvalidInput: a bad URL (:func:`check_url`) or unknown event types, or too
        many endpoints
    :raises NotFound: an unknown workspace
    """
    get_workspace(session, workspace_id)
    count = len(list(session.scalars(_of_workspace(workspace_id))))
    if count >= MAX_ENDPOINTS_PER_WORKSPACE:
        raise InvalidInput(
            f"A workspace has at most {MAX_ENDPOINTS_PER_WORKSPACE} webhook endpoints."
        )
    nonce = webhook_signing.new_nonce()
    secret = webhook_signing.secret_for(secret_key, nonce)
    row = WebhookEndpoint(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        url=check_url(url, policy=policy, allow_http=allow_http),
        description=description or "",
        event_types=check_subscriptions(event_types),
        secret_nonce=nonce,
        secret_hint=secret[:12],
        status=WebhookEndpointStatus.ENABLED,
    )
    session.add(row)
    session.flush()
    _changed()
    return row, secret


def _of_workspace(workspace_id: str) -> Select:
    return (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.workspace_id == workspace_id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )


def query(workspace_id: str) -> Select:
    """The workspace's endpoints, oldest first."""
    return _of_workspace(workspace_id)


def get(session: Session, workspace_id: str, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    """One endpoint of the workspace.

    :raises NotFound: no such endpoint, or another workspace's (indistinguishable)
    """
    row = session.get(WebhookEndpoint, endpoint_id)
    if row is None or row.workspace_id != workspace_id:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    return row


def update(
    session: Session,
    workspace_id: str,
    endpoint_id: uuid.UUID,
    changes: Mapping,
    *,
    policy: OutboundPolicy,
    allow_http: bool = False,
) -> WebhookEndpoint:
    """Change an endpoint's ``url``, ``description``, ``event_types`` or ``enabled``.

    A new URL is checked as at creation (:func:`check_url`). Enabling an endpoint clears
    its failure record. Commit with the caller.
    """
    row = get(session, workspace_id, endpoint_id)
    if "url" in changes:
        row.url = check_url(changes["url"], policy=policy, allow_http=allow_http)
    if "description" in changes:
        row.description = changes["description"] or ""
    if "event_types" in changes:
        row.event_types = check_subscriptions(changes["event_types"])
    if "enabled" in changes:
        if changes["enabled"]:
            row.status = WebhookEndpointStatus.ENABLED
            row.disabled_reason = row.failing_since = None
        elif row.status != WebhookEndpointStatus.DISABLED:
            row.status = WebhookEndpointStatus.DISABLED
            row.disabled_reason = "Disabled through the API."
    row.updated_at = utcnow()
    session.flush()
    _changed()
    return row


def rotate_secret(
    session: Session, workspace_id: str, endpoint_id: uuid.UUID, secret_key: str
) -> tuple[WebhookEndpoint, str]:
    """Give an endpoint a new secret (the old one stops signing at once).

    :returns: the row and the new secret, shown only this once
    """
    row = get(session, workspace_id, endpoint_id)
    row.secret_nonce = webhook_signing.new_nonce()
    secret = webhook_signing.secret_for(secret_key, row.secret_nonce)
    row.secret_hint = secret[:12]
    row.updated_at = utcnow()
    session.flush()
    return row, secret


def remove(session: Session, workspace_id: str, endpoint_id: uuid.UUID) -> None:
    """Delete an endpoint with its messages and their attempts (commit with the caller)."""
    row = get(session, workspace_id, endpoint_id)
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.endpoint_id == row.id))
    session.execute(delete(WebhookMessage).where(WebhookMessage.endpoint_id == row.id))
    session.delete(row)
    session.flush()
    _changed()


def subscriptions(session: Session) -> dict[str, list[tuple[uuid.UUID, tuple[str, ...]]]]:
    """Every enabled endpoint, by workspace: ``{workspace: [(endpoint id, types)]}``."""
    found: dict[str, list[tuple[uuid.UUID, tuple[str, ...]]]] = {}
    rows = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.workspace_id, WebhookEndpoint.event_types)
        .where(WebhookEndpoint.status == WebhookEndpointStatus.ENABLED)
        .order_by(WebhookEndpoint.created_at)
    )
    for endpoint_id, workspace_id, types in rows:
        found.setdefault(workspace_id, []).append((endpoint_id, tuple(types or ())))
    return found


def subscribers(session: Session, workspace_id: str, event_type: str) -> list[uuid.UUID]:
    """The enabled endpoints of a workspace that receive ``event_type``."""
    rows = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
            WebhookEndpoint.workspace_id == workspace_id,
            WebhookEndpoint.status == WebhookEndpointStatus.ENABLED,
        )
    )
    return [endpoint_id for endpoint_id, types in rows if matches(types or (), event_type)]


def disable(row: WebhookEndpoint, reason: str, now: dt.datetime) -> None:
    """Disable an endpoint (HPE itself, after a day of failures)."""
    row.status = WebhookEndpointStatus.DISABLED
    row.disabled_reason = reason
    row.updated_at = now
    _changed()
