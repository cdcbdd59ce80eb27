"""The channel connector interface that channel plugins implement (email, web, ads, ...).

A plugin returns :class:`Connector` subclasses from ``hpe_register_connectors``. HPE makes
one instance per channel when the app or a worker starts, with the plugin's settings
(``PLUGINS[<channel>]``) and a :class:`ChannelRuntime`. The channel hooks
(``hpe_deliver``, ``hpe_parse_webhook``, ``hpe_health_check``, ``hpe_enrich_context``)
default to the connector's methods, so most connectors only override methods here.

No Flask, no RQ: a connector is plain Python and is tested without a web app.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import uuid
from collections.abc import Mapping
from typing import ClassVar

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from hpe_core.deliver.outbound import OutboundPolicy
from hpe_core.deliver.tracking_links import TrackingLinks
from hpe_core.errors import InvalidInput, PermanentDeliveryError
from hpe_core.events import notify  # noqa: F401 - its 0.1 home: plugins may import it here
from hpe_core.store.limits import MAX_USER_ID_LENGTH
from hpe_core.store.vocabulary import ConsentStatus


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
class ChannelRuntime:
    """What HPE gives every connector: how to sign tracking links, where HPE is reachable,
    where outbound requests may go.

    :param links: signs and builds tracked-click, open-pixel and unsubscribe URLs
    :param public_url: HPE's public base URL (``PUBLIC_URL``), or None if not configured
    :param outbound: the operator's policy for outbound requests (``OUTBOUND_ALLOWED_
        NETWORKS``): pass it to :func:`hpe_core.deliver.outbound.post`
    """

    links: TrackingLinks | None = None
    public_url: str | None = None
    outbound: OutboundPolicy = OutboundPolicy()


@dataclasses.dataclass(frozen=True)
class HealthStatus:
    """One channel's health: ``ok`` and a sentence an operator can act on."""

    ok: bool
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class WebhookRequest:
    """An inbound webhook, already authenticated (see :mod:`hpe_core.deliver.webhooks`).

    :param channel: the ``{channel}`` of ``POST /webhooks/{channel}``
    :param workspace_id: the workspace the signature proved
    :param headers: request headers, lower-cased names
    :param body: the raw request body, exactly as signed
    :param query: query-string parameters
    """

    channel: str
    workspace_id: str
    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def json(self) -> object:
        """The body parsed as JSON.

        :raises InvalidInput: if it is not JSON
        """
        try:
            return json.loads(self.body or b"null")
        except (ValueError, RecursionError) as exc:
            raise InvalidInput("The webhook body is not JSON.", {"body": [str(exc)]}) from exc


#: Consent changes an inbound event may carry (see :mod:`hpe_core.decide.consent`). The
#: values of :class:`~hpe_core.store.vocabulary.ConsentStatus`; kept as a tuple because this
#: connector contract exported it (``status in CONSENT_STATUSES`` works on any string).
CONSENT_STATUSES = tuple(ConsentStatus)


@dataclasses.dataclass(frozen=True)
class InboundEvent:
    """One event a webhook brings back, before it becomes an outcome.

    Tie it to a decision with ``decision_id`` (the configuration follows), or give
    ``user_id`` and ``config_id``. ``event_id`` (the provider's id) makes a redelivered
    event count once; without it, the decision + type does (opens and clicks are
    single-shot). ``consent`` withdraws (or restores) the user's consent for the channel.
    """

    type: str
    decision_id: uuid.UUID | None = None
    user_id: str | None = None
    config_id: uuid.UUID | None = None
    value: float | None = None
    occurred_at: dt.datetime | None = None
    event_id: str | None = None
    consent: str | None = None


class _GenericEventSchema(Schema):
    class Meta:
        unknown = RAISE

    type = fields.String(
        required=True, validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}\Z")
    )
    decision_id = fields.UUID(load_default=None)
    user_id = fields.String(load_default=None, validate=validate.Length(1, MAX_USER_ID_LENGTH))
    config_id = fields.UUID(load_default=None)
    value = fields.Float(load_default=None, allow_nan=False)
    occurred_at = fields.AwareDateTime(load_default=None)
    event_id = fields.String(load_default=None, validate=validate.Length(1, 200))
    consent = fields.String(load_default=None, validate=validate.OneOf(CONSENT_STATUSES))


class _GenericBodySchema(Schema):
    class Meta:
        unknown = RAISE

    events = fields.List(
        fields.Nested(_GenericEventSchema), required=True, validate=validate.Length(1, 1000)
    )


def parse_generic_events(request: WebhookRequest) -> list[InboundEvent]:
    """Parse HPE's own webhook format: ``{"events": [{type, decision_id?, user_id?,
    config_id?, value?, occurred_at?, event_id?, consent?}]}``.

    :raises InvalidInput: with per-field messages if the body does not match
    """
    try:
        body = _GenericBodySchema().load(request.json())
    except ValidationError as exc:
        raise InvalidInput("Invalid webhook events.", {"body": exc.messages}) from exc
    return [InboundEvent(**event) for event in body["events"]]


class Connector:
    """Base class of a channel connector, returned by ``hpe_register_connectors``.

    Subclasses set ``name`` (the channel name used in settings) and ``description``, and
    override what their channel does. Optional schemas (marshmallow) declare settings:

    - ``config_schema``: the plugin's settings, ``PLUGINS[<name>]`` (SMTP host...);
      checked when the app starts, so a typo fails fast.
    - ``workspace_settings_schema``: one workspace's settings for the channel (e.g. the
      web channel's CORS origins), set with ``hpe channels configure``.
    - ``content_schema``: ``action.content[<name>]`` in a configuration's settings (e.g.
      an email's subject and body); checked when a configuration is saved.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    config_schema: ClassVar[type[Schema] | None] = None
    workspace_settings_schema: ClassVar[type[Schema] | None] = None
    content_schema: ClassVar[type[Schema] | None] = None
    #: The recipient fields the channel needs, as a marshmallow schema of ``deliver.to``
    #: (a push token, a device id...): checked when a decision asks for delivery (a 422
    #: under ``deliver.to``) and documented in the OpenAPI document as
    #: ``<Name>Recipient``. None: HPE's generic ``{email, phone, name}``.
    recipient_schema: ClassVar[type[Schema] | None] = None

    def __init__(self, plugin_config: Mapping | None = None, runtime: ChannelRuntime | None = None):
        self.plugin_config = dict(plugin_config or {})
        self.runtime = runtime or ChannelRuntime()

    # --- what a connector overrides -----------------------------------------------------

    def send(self, delivery: Delivery) -> DeliveryResult:
        """Render and send one decision's content to its recipient.

        :returns: a :class:`~hpe_core.deliver.delivery.DeliveryResult`
        :raises TransientDeliveryError: when retrying later may work
        :raises PermanentDeliveryError: when it never will
        """
        raise PermanentDeliveryError(f"The {self.name} channel does not deliver messages.")

    def parse_webhook(self, request: WebhookRequest) -> list[InboundEvent]:
        """Turn an authenticated inbound webhook into events (default: HPE's format).

        :raises InvalidInput: if the body cannot be read
        """
        return parse_generic_events(request)

    def health(self) -> HealthStatus:
        """Whether the channel can work now (e.g. the SMTP server answers)."""
        return HealthStatus(ok=True, detail="no check")

    def enrich_context(self, user_id: str, context: Mapping) -> Mapping | None:
        """Extra context keys for a decision on this channel (the caller's keys win)."""
        return None

    def cost_per_decision(self) -> float:
        """What one decision on this channel costs (a send, a placement), for ROI.

        Added to the action's own ``cost``. Operators set it per plugin, e.g.
        ``HPE_PLUGINS='{"email": {"cost_per_decision": 0.002}}'``; a connector whose
        ``config_schema`` rejects unknown keys declares the field (the built-ins do).

        :raises ValueError: if the setting is not a finite number >= 0 (at app start)
        """
        value = self.plugin_config.get("cost_per_decision", 0.0)
        try:
            cost = float(value if value is not None else 0.0)
        except (TypeError, ValueError):
            cost = math.nan
        if isinstance(value, bool) or not math.isfinite(cost) or cost < 0:
            raise ValueError(
                f"PLUGINS[{self.name!r}].cost_per_decision must be a number >= 0, not {value!r}"
            )
        return cost

    # --- helpers ------------------------------------------------------------------------

    @classmethod
    def validate_plugin_config(cls, config: Mapping | None) -> dict:
        """The plugin config checked against ``config_schema``.

        :raises InvalidInput: naming each wrong field
        """
        return _load(cls.config_schema, config or {}, f"PLUGINS[{cls.name!r}]")

    @classmethod
    def validate_workspace_settings(cls, settings: Mapping) -> dict:
        """One workspace's channel settings checked against ``workspace_settings_schema``."""
        if cls.workspace_settings_schema is None and settings:
            raise InvalidInput(
                f"The {cls.name} channel has no workspace settings.",
                {"settings": ["This channel takes no settings."]},
            )
        return _load(cls.workspace_settings_schema, settings, "settings")

    @classmethod
    def validate_content(cls, content: Mapping) -> dict:
        """``action.content[<channel>]`` checked against ``content_schema``."""
        return _load(cls.content_schema, content, "content")

    @classmethod
    def validate_recipient(cls, recipient: Mapping) -> dict | None:
        """``deliver.to`` checked against ``recipient_schema`` (None when the channel
        declares none: the caller applies the generic schema).

        :raises InvalidInput: naming each wrong field
        """
        if cls.recipient_schema is None:
            return None
        return _load(cls.recipient_schema, recipient, "recipient")


# --- Per-workspace channel settings ------------------------------------------------------


def get_settings(session, workspace_id: str, channel: str) -> dict:
    """One workspace's settings for a channel (``{}`` when never set)."""
    from hpe_core.store.models import ChannelSettings

    row = session.get(ChannelSettings, (workspace_id, channel))
    return dict(row.settings) if row is not None else {}


def put_settings(
    session, channels: Mapping[str, Connector], workspace_id: str, channel: str, settings: object
) -> dict:
    """Validate and replace one workspace's settings for a channel (commit with the caller).

    :param channels: channel name -> connector (whose schema validates the settings)
    :returns: the settings as stored
    :raises NotFound: unknown workspace or channel
    :raises InvalidInput: settings the connector rejects
    """
    from hpe_core.errors import NotFound
    from hpe_core.store.models import ChannelSettings
    from hpe_core.tenancy.workspaces import get_workspace

    get_workspace(session, workspace_id)
    connector = channels.get(channel)
    if connector is None:
        raise NotFound(f"No installed plugin provides the {channel!r} channel.")
    if not isinstance(settings, Mapping):
        raise InvalidInput("Channel settings must be a JSON object.")
    stored = type(connector).validate_workspace_settings(settings)
    row = session.get(ChannelSettings, (workspace_id, channel))
    if row is None:
        session.add(ChannelSettings(workspace_id=workspace_id, channel=channel, settings=stored))
    else:
        row.settings = stored
    session.flush()
    return stored


def _load(schema: type[Schema] | None, data: Mapping, where: str) -> dict:
    if schema is None:
        return dict(data)
    try:
        return schema().load(data)
    except ValidationError as exc:
        raise InvalidInput(f"Invalid {where}.", exc.messages_dict) from exc


__all__ = [
    "CONSENT_STATUSES",
    "ChannelRuntime",
    "Connector",
    "HealthStatus",
    "InboundEvent",
    "WebhookRequest",
    "get_settings",
    "notify",
    "parse_generic_events",
    "put_settings",
]
