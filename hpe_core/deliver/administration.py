"""What a workspace's admin changes about its channels (the dashboard's admin pages):
webhook signing secrets, each channel's workspace settings, and a user's consent.

The same services as ``hpe webhooks``, ``hpe channels`` and ``hpe consent``
(:mod:`~hpe_core.deliver.webhooks`, :mod:`~hpe_core.deliver.channels`,
:mod:`~hpe_core.decide.consent`), for the principal's workspace, each change logged as
an activity with the principal (a person: ``user:<email>``) as the actor. Secrets are
never logged, only their hints.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpe_core.decide import consent
from hpe_core.deliver import channels as channel_settings
from hpe_core.deliver import webhooks
from hpe_core.deliver.channels import Connector
from hpe_core.errors import InvalidInput
from hpe_core.store.limits import MAX_USER_ID_LENGTH
from hpe_core.store.models import Consent, WebhookSecret, utcnow
from hpe_core.store.vocabulary import ConsentStatus
from hpe_core.tenancy import activities
from hpe_core.tenancy.workspaces import Principal

WEBHOOK_SECRET_CREATED = "webhook_secret.created"
CHANNEL_SETTINGS_CHANGED = "channel.settings_changed"
CONSENT_CHANGED = consent.CONSENT_CHANGED
#: The longest a previous webhook secret may keep working after a rotation.
MAX_GRACE = dt.timedelta(days=30)


# --- Webhook signing secrets --------------------------------------------------------------


def create_webhook_secret(
    session: Session,
    principal: Principal,
    secret_key: str,
    *,
    grace: dt.timedelta = webhooks.DEFAULT_GRACE,
    now: dt.datetime | None = None,
) -> tuple[WebhookSecret, str]:
    """Create (or rotate to) the workspace's signing secret; the previous ones keep
    working for ``grace``.

    :returns: the stored row and the secret, shown once
    :raises InvalidInput: a grace period below 0 or over :data:`MAX_GRACE`
    """
    if not dt.timedelta(0) <= grace <= MAX_GRACE:
        raise InvalidInput(
            "Invalid grace period.",
            {"grace_hours": [f"From 0 to {MAX_GRACE.days * 24} hours."]},
        )
    row, secret = webhooks.create_secret(
        session, principal.workspace_id, secret_key, grace=grace, now=now
    )
    _log(session, principal, WEBHOOK_SECRET_CREATED, hint=row.hint, grace_hours=_hours(grace))
    return row, secret


@dataclasses.dataclass(frozen=True)
class SecretState:
    """One signing secret as the admin page lists it (never the secret itself)."""

    row: WebhookSecret
    #: ``live`` (no end), ``expiring`` (works until ``row.expires_at``) or ``expired``.
    state: str


def secrets_of(
    session: Session, principal: Principal, *, now: dt.datetime | None = None
) -> list[SecretState]:
    """The workspace's signing secrets, newest first, with whether each still works."""
    now = now or utcnow()
    rows = webhooks.list_secrets(session, principal.workspace_id)
    return [
        SecretState(
            row=row,
            state="live"
            if row.expires_at is None
            else ("expiring" if row.expires_at > now else "expired"),
        )
        for row in reversed(rows)
    ]


def _hours(delta: dt.timedelta) -> float:
    return round(delta.total_seconds() / 3600, 3)


# --- Channel settings ---------------------------------------------------------------------


def put_channel_settings(
    session: Session,
    principal: Principal,
    channels: Mapping[str, Connector],
    channel: str,
    settings: object,
) -> dict:
    """Validate (with the channel's own schema) and replace the workspace's settings for
    one channel; logged with what changed.

    :returns: the settings as stored
    :raises NotFound: no installed plugin provides the channel
    :raises InvalidInput: settings the channel's schema rejects (per field)
    """
    before = channel_settings.get_settings(session, principal.workspace_id, channel)
    stored = channel_settings.put_settings(
        session, channels, principal.workspace_id, channel, settings
    )
    if stored != before:
        _log(
            session,
            principal,
            CHANNEL_SETTINGS_CHANGED,
            channel=channel,
            before=before,
            after=stored,
        )
    return stored


# --- Consent ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ConsentRecord:
    """A user's consent on one channel: the default (``subscribed``, never recorded) or
    the last recorded change, with where it came from."""

    channel: str
    user_id: str
    status: ConsentStatus
    source: str | None = None
    updated_at: dt.datetime | None = None


def consent_of(
    session: Session,
    principal: Principal,
    channels: Mapping[str, Connector],
    channel: str,
    user_id: str,
) -> ConsentRecord:
    """Look up a user's consent on a channel of the workspace.

    :raises InvalidInput: an unknown channel or an impossible user id (per field)
    """
    _check_subject(channels, channel, user_id)
    status = consent.status_of(session, principal.workspace_id, channel, user_id)
    row = session.scalar(
        select(Consent).where(
            Consent.workspace_id == principal.workspace_id,
            Consent.channel == channel,
            Consent.user_id == user_id,
        )
    )
    if row is None:
        return ConsentRecord(channel=channel, user_id=user_id, status=status)
    return ConsentRecord(
        channel=channel,
        user_id=user_id,
        status=status,
        source=row.source,
        updated_at=row.updated_at,
    )


def set_consent(
    session: Session,
    principal: Principal,
    channels: Mapping[str, Connector],
    channel: str,
    user_id: str,
    status: str,
) -> bool:
    """Record a user's consent on a channel (e.g. ``subscribed`` after a re-opt-in).

    A withdrawal keeps its first reason (a complaint stays a complaint), as everywhere.

    :returns: whether it changed (the caller then fires ``hpe_on_consent_changed``)
    :raises InvalidInput: an unknown channel or status, or an impossible user id
    """
    _check_subject(channels, channel, user_id)
    if status not in tuple(ConsentStatus):
        raise InvalidInput(
            "Unknown consent status.", {"status": [f"Choose one of: {', '.join(ConsentStatus)}."]}
        )
    changed = consent.set_status(
        session,
        workspace_id=principal.workspace_id,
        channel=channel,
        user_id=user_id,
        status=status,
        source=principal.actor,
    )
    if changed:
        _log(session, principal, CONSENT_CHANGED, channel=channel, user_id=user_id, status=status)
    return changed


def _check_subject(channels: Mapping[str, Connector], channel: str, user_id: str) -> None:
    errors = {}
    if channel not in channels:
        errors["channel"] = ["Choose one of the installed channels."]
    if not user_id or len(user_id) > MAX_USER_ID_LENGTH:
        errors["user_id"] = [f"Enter the user id (1 to {MAX_USER_ID_LENGTH} characters)."]
    if errors:
        raise InvalidInput("Check the highlighted fields.", errors)


def _log(session: Session, principal: Principal, type: str, **data) -> None:
    activities.record(
        session,
        workspace_id=principal.workspace_id,
        config_id=None,
        type=type,
        actor=principal.actor,
        data=data,
    )
