"""Every hook HPE calls, prefixed ``hpe_``. Plugins implement them with
``from hpe_core import hookimpl``.

Three families, as in pytest and datasette:

- ``hpe_register_*``: called once while the app or a worker starts; each returns a list,
  and the lists of all plugins are concatenated.
- channel hooks (``hpe_deliver``, ``hpe_parse_webhook``, ``hpe_verify_webhook``,
  ``hpe_health_check``) are ``firstresult``: the first non-None answer wins. HPE ships
  ``trylast`` defaults (``plugins.connector_defaults``) that call the channel's
  :class:`~hpe_core.deliver.channels.Connector` methods, so a connector only overrides methods;
  a plugin implements these hooks to wrap or replace a channel (e.g. a sandbox that
  records instead of sending). ``hpe_enrich_context`` collects from every plugin.
- ``hpe_on_*`` events return nothing; they run after the change is committed, and an
  exception in one is logged, never undoes the change.

Hooks grow by adding arguments: an implementation takes only the arguments it needs, so
existing plugins keep working. Never give a hookimpl argument a default value (pluggy
would not pass it). docs/plugins.md documents each hook with an example.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import uuid
    from collections.abc import Mapping
    from datetime import datetime

    from hpe_core.activity_events import ActivityEvent, RecommendationChange
    from hpe_core.deliver.channels import Connector, HealthStatus, InboundEvent, WebhookRequest
    from hpe_core.deliver.delivery import Delivery, DeliveryResult
    from hpe_core.errors import HpeError
    from hpe_core.learn.outcomes import OutcomeEvent
    from hpe_core.runtime import Runtime

hookspec = pluggy.HookspecMarker("hpe")

# --- Registration hooks: called once while building the app or worker ----------------


@hookspec
def hpe_register_connectors() -> list[type[Connector]]:
    """Return the :class:`hpe_core.deliver.channels.Connector` subclasses this plugin provides.

    Called once when the app or a worker starts; the lists of all plugins are
    concatenated. A channel name may be provided by one connector only.

    :returns: a list of Connector subclasses
    """


@hookspec
def hpe_register_blueprints() -> list:
    """Return Flask blueprints to mount on the app (extra endpoints, e.g. tracking links).

    Called once by ``create_app``. A ``flask_smorest.Blueprint`` is registered on the API
    (it appears in the OpenAPI document); a plain ``flask.Blueprint`` on the app. Import
    Flask inside the implementation, so the plugin stays importable without it.

    :returns: a list of blueprints
    """


@hookspec
def hpe_register_commands() -> list:
    """Return ``click`` commands (or groups) to add to the ``hpe`` command line.

    Called once when ``hpe`` starts, with the plugins ``HPE_LOAD_PLUGINS`` /
    ``HPE_BLOCKED_PLUGINS`` allow. A command that needs the app uses
    ``plugins.cli.with_app``.

    :returns: a list of ``click.Command``
    """


@hookspec
def hpe_register_attribution_models() -> list:
    """Return attribution models: objects with ``name``, ``description`` and
    ``credit(touches, conversion_at, options) -> list[float]``.

    ``touches`` are :class:`hpe_core.learn.attribution.Touch` named tuples ``(decision_id,
    decided_at, channel)``: the user's decisions in the configuration during the
    ``attribution.window_hours`` before the conversion, on every channel, oldest first,
    never empty. ``conversion_at`` is when the outcome occurred; ``options`` is the
    configuration's ``attribution`` settings block (e.g. ``half_life_hours``). Return one
    share per touch, same order, each >= 0, summing to 1 (within 1e-6). A wrong answer
    (or an exception) is logged and that outcome waits: no credit is ever written from it.

    Called once when the app or a worker starts; the names become valid values of a
    configuration's ``attribution.model``. Choose a name no other plugin uses: of two
    models with one name, only one is kept.
    HPE's own five models come from ``plugins.attribution``.

    :returns: a list of attribution models (e.g. ``plugins.attribution.AttributionModel``)
    """


# --- Decision hooks ------------------------------------------------------------------------


@hookspec
def hpe_enrich_context(connector: Connector, user_id: str, context: Mapping) -> Mapping | None:
    """Add context for a decision on ``connector``'s channel, before eligibility and policy.

    Called for every decision request, by every plugin (not firstresult): the returned
    mappings are merged in plugin order, and keys the caller sent always win. Keep it
    fast (it is on the decision hot path) and never do I/O per call without a cache.

    :param connector: the channel's connector (``connector.name`` is the channel)
    :param user_id: the user the decision is for
    :param context: the context the caller sent (read-only)
    :returns: extra context keys, or None
    """


# --- Channel hooks (firstresult) ---------------------------------------------------------


@hookspec(firstresult=True)
def hpe_deliver(delivery: Delivery, connector: Connector) -> DeliveryResult | None:
    """Render and send one decision on its channel. Stops at the first non-None result.

    Called by the delivery job (on an RQ worker, or inline without Redis) for a decision
    requested with ``deliver``. The default (trylast) calls ``connector.send(delivery)``.

    :param delivery: the decision, its action content, recipient and variables
    :param connector: the configured connector of ``delivery.channel``
    :returns: a :class:`~hpe_core.deliver.delivery.DeliveryResult`, or None to let the next
        plugin (finally the connector) deliver
    :raises TransientDeliveryError: to be retried (``retry_after`` seconds, if given)
    :raises PermanentDeliveryError: to fail the delivery for good (logged as an activity)
    """


@hookspec(firstresult=True)
def hpe_verify_webhook(
    request: WebhookRequest, connector: Connector
) -> bool | float | datetime | None:
    """Verify an inbound webhook with a provider's own scheme. Stops at the first non-None.

    Called for ``POST /webhooks/{channel}`` before anything is read or stored. Return
    None (the default) to use HPE's HMAC signature check (``X-HPE-Signature``); the time
    the provider signed the request (unix seconds, or an aware datetime) to accept it:
    HPE then refuses it outside its 5-minute tolerance and de-duplicates replays on that
    time and the body; False to refuse with a 401. True also accepts, but without a
    signing time a replay can only be recognised by the body while its receipt is kept
    (10 minutes): return the time whenever the provider signs one.

    :param request: the unverified request (``workspace_id`` as claimed by the sender)
    :param connector: the channel's connector
    :returns: the signing time, False, None for HPE's own check (True: accepted, untimed)
    """


@hookspec(firstresult=True)
def hpe_parse_webhook(request: WebhookRequest, connector: Connector) -> list[InboundEvent] | None:
    """Turn one verified inbound webhook into events. Stops at the first non-None result.

    Called for ``POST /webhooks/{channel}`` once the signature is verified and the
    request is not a replay. The default (trylast) calls ``connector.parse_webhook``
    (HPE's generic ``{"events": [...]}`` format unless the connector overrides it; the
    email connector also reads SendGrid-style event arrays). Events become outcomes of
    their decisions; an event with ``consent`` withdraws the user's consent.

    :param request: channel, workspace, headers, raw body and query of the webhook
    :param connector: the channel's connector
    :returns: a list of :class:`~hpe_core.deliver.channels.InboundEvent`, or None
    :raises InvalidInput: if the body cannot be read (answered 422, nothing stored)
    """


@hookspec(firstresult=True)
def hpe_health_check(connector: Connector) -> HealthStatus | None:
    """Tell whether a channel can work now. Stops at the first non-None result.

    Called by ``GET /channels?health=true`` and ``hpe channels list --health``. The default
    (trylast) calls ``connector.health()``. Keep it under a few seconds.

    :param connector: the channel's connector
    :returns: a :class:`~hpe_core.deliver.channels.HealthStatus`, or None
    """


# --- Events: called after the fact, return nothing ---------------------------------------


@hookspec
def hpe_on_decision(
    workspace_id: str, config_id: uuid.UUID, channel: str, user_id: str, decision: Mapping
) -> None:
    """A decision was logged (committed). Event sinks export or count it here.

    Called in the API process right after ``POST /{id}/decisions`` commits, on the
    request's thread: keep it fast, or hand the work to a queue.

    :param decision: the decision response (``decision_id``, ``action_id``, ``probability``,
        ``variant``, ...)
    """


@hookspec
def hpe_on_outcomes(
    workspace_id: str, config_id: uuid.UUID, outcomes: list[OutcomeEvent], source: str
) -> None:
    """Outcomes were stored (committed) for one configuration.

    Called after the outcomes API (``source`` ``api``), inbound webhooks (``webhook``) and
    tracking links (``tracking``) stored outcomes. Webhook replays are not included; an
    API retry of the same idempotency key is reported again (the store counted it once).

    :param outcomes: the :class:`~hpe_core.learn.outcomes.OutcomeEvent` list as stored
    :param source: where they came from
    """


@hookspec
def hpe_on_delivered(delivery: Delivery, result: DeliveryResult) -> None:
    """A delivery was sent (committed). Called by the delivery job.

    :param delivery: the delivery row, status ``sent`` (recipient and variables erased)
    :param result: what the connector's ``send()`` reported (message id, details)
    """


@hookspec
def hpe_on_delivery_failed(delivery: Delivery, error: HpeError, final: bool) -> None:
    """A delivery attempt failed (committed).

    :param error: the :class:`TransientDeliveryError` or :class:`PermanentDeliveryError`
    :param final: True when the delivery will not be retried (permanent error, or the
        last retry); a ``delivery.failed`` activity is then in the log
    """


@hookspec
def hpe_on_consent_changed(
    workspace_id: str, channel: str, user_id: str, status: str, source: str
) -> None:
    """A user's consent for a channel changed (committed): ``unsubscribed``, ``bounced``,
    ``complained`` or ``subscribed``. Sync it to your ESP or CRM here.

    :param source: what changed it, e.g. ``webhook:email`` or ``tracking:unsubscribe``
    """


@hookspec
def hpe_on_startup(runtime: Runtime) -> None:
    """A process's runtime was built: the app of ``hpe serve`` (each gunicorn worker), an
    ``hpe worker`` process, or an ``hpe`` command. Called once per runtime, before any
    request or job.

    A plugin that works outside requests keeps what it needs here: the session factory
    (``runtime.sessions``), the job backend (``runtime.jobs``) and the settings. HPE's
    outgoing webhooks (``plugins.event_sinks``) register their per-runtime sink here.

    :param runtime: the :class:`hpe_core.runtime.Runtime` just built
    """


@hookspec
def hpe_on_activity(activity: ActivityEvent) -> None:
    """An activity was logged (committed): a configuration created or changed, a model
    version learned (``model.updated``), a guardrail hit (``guardrail.*``), a
    recommendation applied... every row of the activity log, in the process that wrote it
    (an API process or a worker).

    :param activity: the :class:`hpe_core.activity_events.ActivityEvent` (``type``,
        ``workspace_id``, ``config_id``, ``actor``, ``data``, ``created_at``)
    """


@hookspec
def hpe_on_recommendation_changed(recommendation: RecommendationChange) -> None:
    """A recommendation was raised (``status`` ``open``), applied, dismissed or resolved
    (committed), by the measurement pass, a person or the engine.

    :param recommendation: the :class:`hpe_core.activity_events.RecommendationChange`
        (``status`` and ``previous_status``, ``kind``, ``subject``, ``title``, ``patch``)
    """
