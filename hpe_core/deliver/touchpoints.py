"""Touchpoints: answer decision requests end to end: decide, then deliver when asked.

Named for what it serves: a touchpoint is where a decision is asked for (a page view, a
send), and this module holds the one rule for answering it, so ``POST /{id}/decisions``
and the batch endpoint run the same steps.

For each request: refuse a delivery the caller may not have (:func:`check_deliver`), add
the plugins' context (:func:`enrich`), decide (:class:`~hpe_core.decide.decisions.DecisionEngine`)
and, when delivery was asked for and an action was chosen, store a pending delivery in
the same transaction (:func:`answer`, which does not commit). :func:`response` turns the
engine's result into the answer ``hpe_on_decision`` receives; the caller gets it with the
decision's ``outcome_token``, and a publishable key's caller sees only the channel's
content of the action (:func:`for_caller`). After the commit,
:func:`after_commit` enqueues the delivery jobs and calls the ``hpe_on_decision`` event
hook. :func:`decide_and_deliver_all` does all of it for a list in one transaction, and
:func:`decide_and_deliver` for one request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence

import pluggy
from sqlalchemy.orm import Session

from hpe_core import collector
from hpe_core.decide import decision_log, group_commit
from hpe_core.decide.decisions import AUTO, DecisionEngine, DecisionRequest
from hpe_core.decide.results import Decision, NoDecision
from hpe_core.deliver import delivery
from hpe_core.deliver.channels import Connector
from hpe_core.errors import Forbidden, InvalidInput
from hpe_core.events import notify
from hpe_core.learn.outcome_tokens import OutcomeTokens
from hpe_core.store.models import utcnow
from hpe_core.store.vocabulary import DeliveryStatus, KeyKind
from hpe_core.tenancy import client_access
from hpe_core.tenancy.workspaces import Principal

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DeliverRequest:
    """Send the chosen action on the decision's channel too.

    :param recipient: who to send to (``email``, ``phone``, ``name``)
    :param variables: per-user template variables, e.g. ``{"first_name": "Ada"}``

    Both are personal data: they are erased once the delivery is settled.
    """

    recipient: Mapping = dataclasses.field(default_factory=dict)
    variables: Mapping = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TouchpointParts:
    """The process's parts a touchpoint is answered with.

    :param engine: the process's decision engine
    :param pm: the plugin manager (``hpe_enrich_context``, ``hpe_on_decision``)
    :param channels: channel name -> its connector (the channels that can deliver)
    :param enqueue_delivery: queue the delivery job of a committed delivery id. It is a
        callable, not the job backend, so this module does not depend on how the backend
        is called. It may raise (e.g. Redis is down): the delivery stays pending and the
        sweeper enqueues it again later.
    :param outcome_tokens: signs each logged decision's ``outcome_token`` (None: answers
        carry none, and publishable keys cannot report outcomes)
    :param enqueue_deliveries: queue many committed deliveries at once (a batch's: one
        round trip to the queue instead of one each); None: one by one. It may raise like
        ``enqueue_delivery``.
    """

    engine: DecisionEngine
    pm: pluggy.PluginManager
    channels: Mapping[str, Connector]
    enqueue_delivery: Callable[[uuid.UUID], None]
    outcome_tokens: OutcomeTokens | None = None
    enqueue_deliveries: Callable[[list[uuid.UUID]], None] | None = None


@dataclasses.dataclass
class Answer:
    """One answered request, staged in the session and not yet committed.

    :param request: the request as decided (with the plugins' context)
    :param result: what the engine decided
    :param decision: the decision response (:func:`response`). It has a ``delivery``
        entry (``{id, status: "pending"}``) when a delivery was stored
    :param delivery_id: the pending delivery to enqueue after the commit, or None
    """

    request: DecisionRequest
    result: Decision | NoDecision
    decision: dict
    delivery_id: uuid.UUID | None = None

    @property
    def logged(self) -> bool:
        """Whether a decision was logged (False: nothing eligible, see ``reason``)."""
        return isinstance(self.result, Decision)


def response(result: Decision | NoDecision) -> dict:
    """The decision answer: what ``POST /{id}/decisions`` returns and ``hpe_on_decision``
    receives.

    ``{decision_id, action_id, action, probability, variant, model_version, ranking:
    [{action_id, probability}]}``, the ranking most likely first; for
    :class:`~hpe_core.decide.results.NoDecision` every field is null, ``ranking`` is
    empty and ``reason`` says why.
    """
    if isinstance(result, NoDecision):
        return {
            "decision_id": None,
            "action_id": None,
            "action": None,
            "probability": None,
            "variant": None,
            "channel": None,
            "model_version": None,
            "ranking": [],
            "reason": result.reason,
        }
    if result.eligible_channels is not None:
        # The engine chose the channel: each entry of the ranking is an (action, channel).
        ranking = [
            {"action_id": a, "channel": c, "probability": p} for a, c, p in result.ranked_channels()
        ]
    else:
        ranking = [{"action_id": a, "probability": p} for a, p in result.ranked_pairs()]
    return {
        "decision_id": result.decision_id,
        "action_id": result.action_id,
        "action": result.action.document,
        "probability": result.probability,
        "variant": result.variant,
        "channel": result.channel,
        "model_version": result.model_version,
        "ranking": ranking,
    }


def for_caller(
    item: Answer, principal: Principal, tokens: OutcomeTokens | None, now: dt.datetime
) -> dict:
    """The answer the caller gets for one request: the decision response with the
    decision's ``outcome_token`` (when one was logged); for a publishable key, its
    ``action`` trimmed to the request channel's content (no cost, no rules,
    :func:`~hpe_core.tenancy.client_access.client_view`)."""
    decision = item.decision
    if client_access.publishable(principal):
        action = client_access.client_view(
            decision["action"], decision.get("channel") or item.request.channel
        )
        decision = {**decision, "action": action}
    if item.logged and tokens is not None:
        decision = {**decision, "outcome_token": tokens.issue(decision["decision_id"], now)}
    return decision


def check_deliver(
    principal: Principal,
    channels: Mapping[str, Connector],
    request: DecisionRequest,
    deliver: DeliverRequest | None,
) -> None:
    """Refuse a delivery the caller may not request, before anything is decided.

    :raises Forbidden: a publishable key asked for delivery (web pages must not send
        messages)
    :raises InvalidInput: no installed plugin delivers on the request's channel
    """
    if deliver is None:
        return
    if principal.kind != KeyKind.SECRET:
        raise Forbidden("A publishable key cannot request delivery: use a secret key.")
    # With "auto" (the configuration's channels, all provided by plugins) or a list, each
    # channel the engine may choose must be deliverable.
    wanted = request.channels if request.channel == AUTO else (request.channel,)
    if any(channel not in channels for channel in wanted):
        raise InvalidInput(
            "No installed plugin delivers on this channel.",
            {"channel": ["No connector for this channel."]},
        )


def enrich(
    pm: pluggy.PluginManager, channels: Mapping[str, Connector], request: DecisionRequest
) -> DecisionRequest:
    """The request with the channel plugins' extra context (``hpe_enrich_context``).

    The contributions are merged in plugin order, and the caller's keys always win. A
    channel without a connector gets no extra context.
    """
    connector = channels.get(request.channel)
    if connector is None:
        return request
    extra: dict = {}
    for contribution in pm.hook.hpe_enrich_context(
        connector=connector, user_id=request.user_id, context=request.context
    ):
        if contribution:
            extra.update(contribution)
    if not extra:
        return request
    return dataclasses.replace(request, context={**extra, **request.context})


def answer(
    session: Session,
    parts: TouchpointParts,
    principal: Principal,
    config_id: uuid.UUID,
    request: DecisionRequest,
    deliver: DeliverRequest | None = None,
) -> Answer:
    """Decide one request and, when asked, store its pending delivery. Does not commit.

    The decision row and the delivery row are written in the session's transaction, so
    they are committed together. Commit, then call :func:`after_commit` with the answer.

    :raises Forbidden: a publishable key asked for delivery (nothing is decided)
    :raises InvalidInput: delivery on a channel without a connector (nothing is decided),
        or what the engine refuses (unknown channel or candidates)
    :raises NotFound: unknown configuration, or another workspace's
    :raises Conflict: the configuration is PAUSED or INACTIVE
    """
    check_deliver(principal, parts.channels, request, deliver)
    request = enrich(parts.pm, parts.channels, request)
    result = parts.engine.decide(session, principal, config_id, request)
    decision = response(result)
    if deliver is None or isinstance(result, NoDecision):
        return Answer(request, result, decision)
    channel = result.channel or request.channel
    if request.channel == AUTO:
        deliver = _checked_for(parts.channels[channel], deliver)
    row = delivery.request_delivery(
        session,
        workspace_id=principal.workspace_id,
        config_id=config_id,
        decision_id=result.decision_id,
        channel=channel,
        user_id=request.user_id,
        action_id=result.action_id,
        recipient=deliver.recipient,
        variables=deliver.variables,
    )
    decision["delivery"] = {"id": row.id, "status": DeliveryStatus.PENDING}
    return Answer(request, result, decision, row.id)


def _checked_for(connector: Connector, deliver: DeliverRequest) -> DeliverRequest:
    """``deliver.to`` checked by the channel the engine chose (a request on "auto" or a
    list of channels could not be checked before the choice).

    :raises InvalidInput: under ``deliver.to``; the caller rolls the decision back
    """
    try:
        checked = type(connector).validate_recipient(deliver.recipient)
    except InvalidInput as exc:
        raise InvalidInput(
            f"deliver.to does not suit the chosen channel {connector.name}: {exc.message}",
            {"deliver": {"to": exc.errors}},
        ) from exc
    if checked is None:
        return deliver
    return dataclasses.replace(deliver, recipient=checked)


def after_commit(
    parts: TouchpointParts, principal: Principal, config_id: uuid.UUID, answers: Iterable[Answer]
) -> None:
    """Enqueue each committed answer's delivery and call ``hpe_on_decision`` for it.

    Answers with nothing logged are skipped. Neither step can fail the caller: the
    decisions are committed already. Several deliveries go to the queue together when
    the parts can (``enqueue_deliveries``).
    """
    answers = list(answers)
    deliveries = [item.delivery_id for item in answers if item.delivery_id is not None]
    together = len(deliveries) > 1 and parts.enqueue_deliveries is not None
    if together:
        try:
            parts.enqueue_deliveries(deliveries)
        except Exception as exc:  # noqa: BLE001 - e.g. Redis down: the decisions are committed
            # The deliveries are stored as pending, so the sweeper enqueues them again later.
            log.warning("could not enqueue %d deliveries (will be swept): %s", len(deliveries), exc)
    for item in answers:
        if not item.logged:
            continue
        if item.delivery_id is not None and not together:
            try:
                parts.enqueue_delivery(item.delivery_id)
            except Exception as exc:  # noqa: BLE001 - e.g. Redis down: the decision is committed
                # The delivery is stored as pending, so the sweeper enqueues it again later.
                log.warning(
                    "could not enqueue delivery %s (will be swept): %s", item.delivery_id, exc
                )
        notify(
            parts.pm.hook.hpe_on_decision,
            workspace_id=principal.workspace_id,
            config_id=config_id,
            channel=item.decision.get("channel") or item.request.channel,
            user_id=item.request.user_id,
            decision=item.decision,
        )


def decide_and_deliver_all(
    session: Session,
    parts: TouchpointParts,
    principal: Principal,
    config_id: uuid.UUID,
    requests: Sequence[tuple[DecisionRequest, DeliverRequest | None]],
) -> list[dict]:
    """Answer several requests in one transaction, then run the after-commit steps.

    Every delivery is checked before anything is decided. The session is committed once,
    and only when at least one decision was logged (a request with nothing eligible writes
    nothing). If a request fails, the transaction is rolled back: none of the decisions
    are kept.

    :param requests: ``(request, deliver or None)`` pairs
    :returns: the decision responses as the caller sees them (:func:`for_caller`), in
        request order
    :raises: what :func:`answer` raises
    """
    for request, deliver in requests:
        check_deliver(principal, parts.channels, request, deliver)
    try:
        answers = _answer_all(session, parts, principal, config_id, requests)
        # Nothing to commit when the decision was group-committed and nothing was read.
        if any(item.logged for item in answers) and session.in_transaction():
            session.commit()
    except Exception:
        session.rollback()
        raise
    after_commit(parts, principal, config_id, answers)
    now = utcnow()
    return [for_caller(item, principal, parts.outcome_tokens, now) for item in answers]


def _answer_all(
    session: Session,
    parts: TouchpointParts,
    principal: Principal,
    config_id: uuid.UUID,
    requests: Sequence[tuple[DecisionRequest, DeliverRequest | None]],
) -> list[Answer]:
    """:func:`answer` each request, then write their decisions together
    (:mod:`hpe_core.decide.decision_log`: one COPY or multi-row INSERT, before the
    deliveries that refer to them). The caller commits; a single decision with nothing
    else to write is committed here already, sharing its commit with the process's
    concurrent ones (:mod:`hpe_core.decide.group_commit`)."""
    answers = []
    # No autoflush: a delivery must not be flushed before the decision it refers to.
    with (
        decision_log.collecting(session) as pending,
        session.no_autoflush,
        collector.paused(len(requests) > 1),  # a batch's answers hold no cycles
    ):
        if len(requests) > 1:  # the frequency caps' reads, for all requests at once
            parts.engine.prepare_batch(
                session, principal, config_id, [request for request, _ in requests]
            )
        for index, (request, deliver) in enumerate(requests):
            try:
                answers.append(answer(session, parts, principal, config_id, request, deliver))
            except InvalidInput as exc:
                if len(requests) == 1:
                    raise
                # Name the request: one of thousands is wrong.
                raise InvalidInput(
                    f"Request {index}: {exc.message}", {"requests": {index: exc.errors}}
                ) from exc
        writer = _group_writer(session, requests, pending)
        if writer is not None:
            writer.write(pending.take())
        else:
            decision_log.flush(session)
    return answers


def _group_writer(
    session: Session,
    requests: Sequence[tuple[DecisionRequest, DeliverRequest | None]],
    pending: decision_log.Pending,
) -> group_commit.GroupWriter | None:
    """The process's group writer when one decision is all there is to write (no
    delivery, nothing else in the session) and its id is new (a caller's own id may
    exist already: its IntegrityError must stay its own), else None."""
    if len(requests) != 1 or len(pending.rows) != 1:
        return None
    request, deliver = requests[0]
    if deliver is not None or request.decision_id is not None:
        return None
    if session.new or session.dirty or session.deleted:
        return None
    return group_commit.writer_for(session.get_bind())


def decide_and_deliver(
    session: Session,
    parts: TouchpointParts,
    principal: Principal,
    config_id: uuid.UUID,
    request: DecisionRequest,
    deliver: DeliverRequest | None = None,
) -> dict:
    """Answer one request: decide, store the delivery if asked, commit, then enqueue the
    delivery and call ``hpe_on_decision``.

    :returns: the decision response (``decision_id`` None with a ``reason`` when nothing is
        eligible; nothing is written then), with ``delivery: {id, status: "pending"}`` when
        a delivery was stored
    :raises: what :func:`answer` raises
    """
    return decide_and_deliver_all(session, parts, principal, config_id, [(request, deliver)])[0]
