"""Inbound channel webhooks: signing secrets, signature verification, replay dedupe, and
turning verified events into outcomes and consent changes.

Signing (documented in docs/plugins.md, "Inbound webhooks")::

    X-HPE-Workspace: <workspace id>         (or ?workspace=<id>)
    X-HPE-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

A signature is accepted within :data:`TOLERANCE_SECONDS` of the server's clock, compared
in constant time against every live secret of the workspace (after a rotation the old
secret keeps working for a grace period), and each accepted signature is stored so a
replay is answered without being processed twice. A channel plugin may verify its
provider's own signature instead (``hpe_verify_webhook``).

:func:`receive` runs the whole of ``POST /webhooks/{channel}`` after the body is read:
authenticate, dedupe, parse (``hpe_parse_webhook``), store (:func:`ingest`), commit,
then announce (``hpe_on_outcomes``, ``hpe_on_consent_changed``).

Secrets: the workspace's secret is ``HMAC(SECRET_KEY, nonce)``; only the random nonce is
stored. It must be recomputable (HMAC needs the secret itself, unlike API keys, which are
stored hashed), and this way a database dump alone does not reveal it. A nonce names the
key it was made under (:meth:`~hpe_core.secret_keys.SecretKeys.new_nonce`): after a key
rotation, secrets made under a key kept in ``SECRET_KEY_FALLBACKS`` still verify; they
stop when that key leaves the fallbacks, so create new secrets before it does.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import re
import uuid
from collections import defaultdict
from collections.abc import Mapping
from typing import NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hpe_core.decide import consent
from hpe_core.deliver.channels import (
    CONSENT_STATUSES,
    Connector,
    InboundEvent,
    WebhookRequest,
)
from hpe_core.errors import InvalidInput, NotFound, Unauthorized
from hpe_core.events import notify
from hpe_core.learn import outcomes
from hpe_core.secret_keys import SecretKeys
from hpe_core.store.db import dialect_insert
from hpe_core.store.models import Config, Decision, WebhookReceipt, WebhookSecret, utcnow
from hpe_core.tenancy.workspaces import Principal, get_workspace

TOLERANCE_SECONDS = 300
DEFAULT_GRACE = dt.timedelta(hours=24)
SIGNATURE_HEADER = "X-HPE-Signature"
WORKSPACE_HEADER = "X-HPE-Workspace"
_EVENT_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}")
_RECEIPTS = WebhookReceipt.__table__


# --- Secrets ---------------------------------------------------------------------------


def _secret(secret_key: str, nonce: str) -> str:
    key = hashlib.sha256(b"hpe-webhook-secret:" + secret_key.encode()).digest()
    mac = hmac.new(key, nonce.encode(), hashlib.sha256).digest()
    return "whsec_" + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _candidate_secrets(keys: SecretKeys, nonce: str) -> list[str]:
    """The secrets a stored nonce may stand for: one per key that may have made it."""
    return [_secret(key, nonce) for key in keys.keys_for_nonce(nonce)]


def create_secret(
    session: Session,
    workspace_id: str,
    secret_key: SecretKeys | str,
    *,
    grace: dt.timedelta = DEFAULT_GRACE,
    now: dt.datetime | None = None,
) -> tuple[WebhookSecret, str]:
    """Create (or rotate to) a new signing secret for a workspace.

    Secrets that were live keep working for ``grace`` (0: revoked now), so senders can
    switch without losing events.

    :returns: the stored row and the secret, shown once
    :raises NotFound: for an unknown workspace
    """
    now = now or utcnow()
    get_workspace(session, workspace_id)
    for old in _live(session, workspace_id, now):
        if old.expires_at is None or old.expires_at > now + grace:
            old.expires_at = now + grace
    keys = SecretKeys.of(secret_key)
    nonce = keys.new_nonce()
    secret = _secret(keys.current, nonce)
    row = WebhookSecret(workspace_id=workspace_id, nonce=nonce, hint=secret[:10], created_at=now)
    session.add(row)
    session.flush()
    return row, secret


def _live(session: Session, workspace_id: str, now: dt.datetime) -> list[WebhookSecret]:
    return list(
        session.scalars(
            select(WebhookSecret).where(
                WebhookSecret.workspace_id == workspace_id,
                (WebhookSecret.expires_at.is_(None)) | (WebhookSecret.expires_at > now),
            )
        )
    )


def list_secrets(session: Session, workspace_id: str) -> list[WebhookSecret]:
    return list(
        session.scalars(
            select(WebhookSecret)
            .where(WebhookSecret.workspace_id == workspace_id)
            .order_by(WebhookSecret.created_at)
        )
    )


# --- Signing and verifying -------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-HPE-Signature`` header value for a body (what a sender computes)."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _parse_header(header: str | None) -> tuple[int, list[str]]:
    timestamp, signatures = None, []
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1" and re.fullmatch(r"[0-9a-f]{64}", value):
            signatures.append(value)
    if timestamp is None or not signatures:
        raise Unauthorized(
            f"Missing or malformed {SIGNATURE_HEADER} header: send t=<unix time>,v1=<hex>."
        )
    return timestamp, signatures


def verify(
    session: Session,
    secret_key: SecretKeys | str,
    workspace_id: str | None,
    header: str | None,
    body: bytes,
    *,
    now: dt.datetime | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> str:
    """Check a webhook's signature.

    :returns: the digest that identifies this signed request (for replay dedupe)
    :raises Unauthorized: unknown workspace, stale timestamp or wrong signature (one
        message for the last two kinds, so a prober learns nothing)
    """
    now = now or utcnow()
    timestamp, signatures = _parse_header(header)
    if abs(now.timestamp() - timestamp) > tolerance:
        raise Unauthorized(
            f"Webhook timestamp outside the {tolerance} s tolerance: check the sender's clock."
        )
    if not workspace_id or len(workspace_id) > 64:
        raise Unauthorized(f"Name the workspace in the {WORKSPACE_HEADER} header.")
    signed = str(timestamp).encode() + b"." + body
    keys = SecretKeys.of(secret_key)
    for row in _live(session, workspace_id, now):
        for secret in _candidate_secrets(keys, row.nonce):
            expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
            # Every candidate is compared in constant time; no early exit on the first byte.
            if any(hmac.compare_digest(expected, candidate) for candidate in signatures):
                return hashlib.sha256(f"{timestamp}.{expected}".encode()).hexdigest()
    raise Unauthorized("Invalid webhook signature.")


def claim(
    session: Session, workspace_id: str, channel: str, digest: str, now: dt.datetime | None = None
) -> bool:
    """Record that a signed request is being processed (same transaction as its events).

    :returns: False if it was already processed (a replay or the sender's retry)
    """
    statement = (
        dialect_insert(session, _RECEIPTS)
        .on_conflict_do_nothing(index_elements=["workspace_id", "digest"])
        .returning(_RECEIPTS.c.id)
    )
    inserted = session.execute(
        statement,
        {
            "id": uuid.uuid4(),
            "workspace_id": workspace_id,
            "channel": channel,
            "digest": digest,
            "events": 0,
            "received_at": now or utcnow(),
        },
    )
    return inserted.first() is not None


def purge_receipts(
    session: Session, *, workspace_id: str | None = None, older_than: dt.datetime | None = None
) -> int:
    """Delete receipts older than the signature tolerance (a replay of those fails the
    timestamp check anyway). Commit with the caller.

    :returns: how many were deleted
    """
    cutoff = older_than or utcnow() - dt.timedelta(seconds=2 * TOLERANCE_SECONDS)
    statement = delete(WebhookReceipt).where(WebhookReceipt.received_at < cutoff)
    if workspace_id is not None:
        statement = statement.where(WebhookReceipt.workspace_id == workspace_id)
    result = session.execute(statement)
    return result.rowcount or 0


# --- From events to outcomes -----------------------------------------------------------


@dataclasses.dataclass
class IngestReport:
    accepted: int = 0
    ignored: list[dict] = dataclasses.field(default_factory=list)
    #: config id -> the OutcomeEvents stored (for ``hpe_on_outcomes``)
    outcomes: dict = dataclasses.field(default_factory=lambda: defaultdict(list))
    #: (config id, user id, status) consent changes (for ``hpe_on_consent_changed``)
    consent_changes: list[tuple] = dataclasses.field(default_factory=list)


def ingest(
    session: Session,
    request: WebhookRequest,
    events: list[InboundEvent],
    *,
    now: dt.datetime | None = None,
) -> IngestReport:
    """Store verified events as outcomes (and consent changes); commit with the caller.

    Events that cannot be tied to a decision or configuration of the workspace are
    ignored and reported (with their index), never fail the rest.
    """
    now = now or utcnow()
    report = IngestReport()
    targets = _Targets.load(session, request.workspace_id, events)
    by_config: dict[uuid.UUID, list[outcomes.OutcomeEvent]] = defaultdict(list)
    for index, event in enumerate(events):
        target = targets.of(event)
        if isinstance(target, str):
            report.ignored.append({"index": index, "reason": target})
            continue
        by_config[target.config_id].append(_outcome(request.channel, event, target.user_id))
        if event.consent and _change_consent(session, request, event, target, now):
            report.consent_changes.append((target.config_id, target.user_id, event.consent))
    _record_outcomes(session, request, by_config, report, now)
    return report


class _Target(NamedTuple):
    """The configuration and user an inbound event belongs to."""

    config_id: uuid.UUID
    user_id: str


@dataclasses.dataclass(frozen=True)
class _Targets:
    """The workspace's decisions and configurations that a batch of events names (two
    queries for the whole batch)."""

    decisions: Mapping[uuid.UUID, _Target]
    configs: frozenset[uuid.UUID]

    @classmethod
    def load(cls, session: Session, workspace_id: str, events: list[InboundEvent]) -> _Targets:
        decision_ids = {e.decision_id for e in events if isinstance(e.decision_id, uuid.UUID)}
        config_ids = {e.config_id for e in events if isinstance(e.config_id, uuid.UUID)}
        decisions: dict[uuid.UUID, _Target] = {}
        if decision_ids:
            rows = session.execute(
                select(Decision.id, Decision.config_id, Decision.user_id).where(
                    Decision.workspace_id == workspace_id, Decision.id.in_(decision_ids)
                )
            )
            decisions = {row.id: _Target(row.config_id, row.user_id) for row in rows}
        configs: frozenset[uuid.UUID] = frozenset()
        if config_ids:
            configs = frozenset(
                session.scalars(
                    select(Config.id).where(
                        Config.workspace_id == workspace_id, Config.id.in_(config_ids)
                    )
                )
            )
        return cls(decisions, configs)

    def of(self, event: InboundEvent) -> _Target | str:
        """Where the event belongs, or why it is ignored."""
        if not isinstance(event.type, str) or not _EVENT_TYPE.fullmatch(event.type):
            return "invalid event type"
        if event.consent is not None and event.consent not in CONSENT_STATUSES:
            return "invalid consent status"
        if event.decision_id is not None:
            return self.decisions.get(event.decision_id) or "unknown decision"
        if event.config_id not in self.configs or not event.user_id:
            return "needs a decision_id, or a config_id and user_id"
        return _Target(event.config_id, event.user_id)


def _outcome(channel: str, event: InboundEvent, user_id: str) -> outcomes.OutcomeEvent:
    # The provider's event id, namespaced by channel, makes a redelivered event count once.
    return outcomes.OutcomeEvent(
        type=event.type,
        decision_id=event.decision_id,
        user_id=user_id,
        value=event.value,
        occurred_at=event.occurred_at,
        idempotency_key=f"{channel}:{event.event_id}" if event.event_id else None,
    )


def _change_consent(
    session: Session,
    request: WebhookRequest,
    event: InboundEvent,
    target: _Target,
    now: dt.datetime,
) -> bool:
    return consent.set_status(
        session,
        workspace_id=request.workspace_id,
        channel=request.channel,
        user_id=target.user_id,
        status=event.consent,
        source=f"webhook:{request.channel}",
        config_id=target.config_id,
        now=now,
    )


def _record_outcomes(
    session: Session,
    request: WebhookRequest,
    by_config: Mapping[uuid.UUID, list[outcomes.OutcomeEvent]],
    report: IngestReport,
    now: dt.datetime,
) -> None:
    """Store each configuration's outcomes, in batches the outcome store accepts."""
    principal = Principal(workspace_id=request.workspace_id, actor=f"webhook:{request.channel}")
    for config_id, batch in by_config.items():
        for start in range(0, len(batch), outcomes.MAX_BATCH):
            chunk = batch[start : start + outcomes.MAX_BATCH]
            outcomes.record(session, principal, config_id, chunk, source="webhook", now=now)
            report.outcomes[config_id].extend(chunk)
            report.accepted += len(chunk)


def validate_event_list(events: object) -> list[InboundEvent]:
    """What a ``hpe_parse_webhook`` implementation returned, checked.

    :raises InvalidInput: if it is not a list of InboundEvent
    """
    if not isinstance(events, list) or not all(isinstance(e, InboundEvent) for e in events):
        raise InvalidInput("The channel plugin returned something other than a list of events.")
    return events


# --- One inbound request, end to end ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Receipt:
    """What :func:`receive` did with one request (the API's answer).

    :param duplicate: the signed request was processed before: nothing was stored
    :param report: what was stored (None for a duplicate)
    """

    duplicate: bool
    report: IngestReport | None = None


def receive(
    session: Session,
    pm,
    channels: Mapping[str, Connector],
    request: WebhookRequest,
    *,
    secret_key: SecretKeys | str,
    signature: str | None,
) -> Receipt:
    """Authenticate, dedupe, parse and store one inbound webhook; commit; then call the
    ``hpe_on_outcomes`` and ``hpe_on_consent_changed`` events.

    :param pm: the plugin manager (``hpe_verify_webhook``, ``hpe_parse_webhook``, events)
    :param channels: channel name -> connector
    :param secret_key: the app's key ring (or SECRET_KEY alone): webhook secrets derive
        from it
    :param signature: the ``X-HPE-Signature`` header
    :raises Unauthorized: the plugin refused the signature, or ours does not verify
    :raises NotFound: no installed plugin provides the channel (told only once the
        request is authenticated)
    :raises InvalidInput: a body the channel cannot read
    """
    connector = channels.get(request.channel)
    digest = _authenticate(session, pm, connector, request, secret_key, signature)
    if connector is None:
        raise NotFound(f"No installed plugin provides the {request.channel!r} channel.")
    if not claim(session, request.workspace_id, request.channel, digest):
        session.rollback()
        return Receipt(duplicate=True)
    events = pm.hook.hpe_parse_webhook(request=request, connector=connector)
    report = ingest(session, request, validate_event_list(events or []))
    # Receipts only matter within the signature tolerance: each request tidies its own.
    purge_receipts(session, workspace_id=request.workspace_id)
    session.commit()
    _announce(pm, request, report)
    return Receipt(duplicate=False, report=report)


def _authenticate(
    session: Session,
    pm,
    connector: Connector | None,
    request: WebhookRequest,
    secret_key: SecretKeys | str,
    signature: str | None,
) -> str:
    """The digest that identifies this authenticated request (for replay dedupe).

    The channel's plugin may vouch for its provider's own signature; otherwise HPE's
    signature must verify, even for an unknown channel: authenticate before telling
    whether the channel exists.
    """
    verdict = None
    if connector is not None:
        verdict = pm.hook.hpe_verify_webhook(request=request, connector=connector)
    if verdict is None:
        return verify(session, secret_key, request.workspace_id, signature, request.body)
    if verdict is False:
        raise Unauthorized("The channel plugin refused this webhook's signature.")
    if verdict is True:
        # No signing time: the body is all there is to recognise a replay by, within the
        # receipts' lifetime. Plugins should return the provider's signing time instead.
        return hashlib.sha256(b"plugin:" + request.body).hexdigest()
    signed_at = _signing_time(verdict)
    return _timed_digest(signed_at, request.body)


def _signing_time(verdict: object) -> int:
    """The unix time a plugin's verdict says its provider signed the request at.

    :raises InvalidInput: the verdict is neither a bool, None nor a time (a plugin bug)
    """
    if isinstance(verdict, dt.datetime) and verdict.tzinfo is not None:
        return int(verdict.timestamp())
    if isinstance(verdict, int | float) and not isinstance(verdict, bool):
        if verdict == verdict and abs(verdict) < 1e11:  # not NaN, a plausible unix time
            return int(verdict)
    raise InvalidInput(
        "The channel plugin's hpe_verify_webhook returned neither True, False, None nor "
        "the time the provider signed the request (unix seconds or an aware datetime)."
    )


def _timed_digest(signed_at: int, body: bytes, *, tolerance: int = TOLERANCE_SECONDS) -> str:
    """A plugin-verified request's digest: its signing time and body, within the same
    tolerance as HPE's own signatures (so a replay is refused once its receipt is gone).

    :raises Unauthorized: the signing time is outside the tolerance
    """
    if abs(utcnow().timestamp() - signed_at) > tolerance:
        raise Unauthorized(
            f"Webhook timestamp outside the {tolerance} s tolerance: check the sender's clock."
        )
    return hashlib.sha256(f"plugin:{signed_at}.".encode() + body).hexdigest()


def _announce(pm, request: WebhookRequest, report: IngestReport) -> None:
    """The event hooks for what was committed: outcomes per configuration, consent changes."""
    for config_id, stored in report.outcomes.items():
        notify(
            pm.hook.hpe_on_outcomes,
            workspace_id=request.workspace_id,
            config_id=config_id,
            outcomes=stored,
            source="webhook",
        )
    for _config_id, user_id, status in report.consent_changes:
        notify(
            pm.hook.hpe_on_consent_changed,
            workspace_id=request.workspace_id,
            channel=request.channel,
            user_id=user_id,
            status=status,
            source=f"webhook:{request.channel}",
        )
