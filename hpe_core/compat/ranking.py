"""Personalizer's Rank and multi-slot Rank, answered by HPE's decision engine.

A Rank call is a decision request (:mod:`hpe_core.deliver.touchpoints`, the same steps as
``POST /{id}/decisions``): the Rank's actions, less its ``excludedActions``, are the
candidates; its ``contextFeatures`` are the context; the event id is the user (treatment
or holdout is drawn per event); the channel is the configuration's first. The decision is
logged with its propensity, variant and model version under the id derived from the
event id (:mod:`hpe_core.compat.options`), so:

- **Replays**: a Rank whose event id already has a decision logs nothing new and answers
  that decision again, provided its ``contextFeatures`` agree with the first call's and
  its actions still include the action chosen then; otherwise it is refused (409). Two
  Rank calls racing with one event id: the second insert fails on the primary key, and
  that call answers the first one's decision.
- **Dynamic actions**: ids the configuration does not list join its catalog with the
  features the Rank gave them (a validated settings update, logged as ``config.updated``,
  committed before deciding), unless ``personalizer.dynamic_actions`` is false (400).
  Actions the configuration lists keep its features.
- **Deferred activation**: the decision is logged as ``deferred`` (see
  :mod:`hpe_core.compat.feedback`): neither counted in metrics nor learned until the event
  is activated.

The answer ranks the chosen action first, then the other eligible actions by probability,
then the actions that could not be chosen (excluded, or not eligible under the
configuration's rules) with probability 0. Nothing eligible (a frequency cap, quiet hours,
a budget...): no decision is logged and ``rewardActionId`` is null.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hpe_core.compat.errors import coded, flat_messages, invalid
from hpe_core.compat.features import action_document, hpe_action_id, personalizer_id
from hpe_core.compat.options import (
    channel_of,
    check_event_id,
    event_decision_id,
    new_event_id,
    slot_decision_id,
)
from hpe_core.decide.decisions import ConfigSnapshot, DecisionRequest
from hpe_core.decide.results import Decision, NoDecision, NoDecisionReason
from hpe_core.deliver import touchpoints
from hpe_core.deliver.touchpoints import Answer, TouchpointParts
from hpe_core.errors import Conflict, InvalidInput, NotFound
from hpe_core.store.models import Config
from hpe_core.store.models import Decision as DecisionRow
from hpe_core.store.vocabulary import Variant
from hpe_core.tenancy import configs
from hpe_core.tenancy.configs import Catalog, settings_of
from hpe_core.tenancy.settings import MAX_ACTIONS
from hpe_core.tenancy.workspaces import Principal

#: The context key a slot's id and features are given under (multi-slot Rank).
SLOT_KEY = "_slot"
#: Most slots one multi-slot Rank may fill.
MAX_SLOTS = 50
RANK_ERROR = "InvalidRankRequest"


@dataclasses.dataclass(frozen=True, slots=True)
class RankAction:
    """One action of a Rank call: its Personalizer id and its flattened features."""

    id: str
    features: Mapping = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RankRequest:
    """A single-slot Rank call, its shapes checked (:mod:`web.compat` parses it)."""

    context: Mapping
    actions: tuple[RankAction, ...]
    excluded: tuple[str, ...] = ()
    event_id: str | None = None
    defer: bool = False


@dataclasses.dataclass(frozen=True)
class Slot:
    """One slot of a multi-slot Rank: its features, its excluded actions and the action
    the caller would show there without Personalizer (``baselineAction``)."""

    id: str
    baseline: str
    features: Mapping = dataclasses.field(default_factory=dict)
    excluded: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class MultiSlotRequest:
    context: Mapping
    actions: tuple[RankAction, ...]
    slots: tuple[Slot, ...]
    event_id: str | None = None
    defer: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class RankedEvent:
    """A Rank answer.

    :param ranking: ``(Personalizer action id, probability)`` in the answer's order
    :param reward_action_id: the chosen action; None when nothing was eligible
    :param variant: treatment or holdout (None: nothing was logged)
    :param replayed: the event had been ranked before: its first decision is answered
    :param reason: why nothing was chosen (None when an action was)
    """

    event_id: str
    ranking: tuple[tuple[str, float], ...]
    reward_action_id: str | None
    variant: Variant | None
    replayed: bool = False
    reason: NoDecisionReason | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SlotResult:
    slot_id: str
    reward_action_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class MultiSlotResult:
    event_id: str
    slots: tuple[SlotResult, ...]
    replayed: bool = False


class _Logged(NamedTuple):
    """A logged decision of an event, as a replay needs it."""

    id: uuid.UUID
    context: dict
    action_id: str
    eligible: list
    probabilities: list
    variant: str


# --- Single-slot Rank ---------------------------------------------------------------------


def rank(
    session: Session,
    parts: TouchpointParts,
    catalog: Catalog,
    principal: Principal,
    config_id: uuid.UUID,
    request: RankRequest,
) -> RankedEvent:
    """Decide one Rank call and log it (or answer its event's logged decision again).

    :raises NotFound: unknown configuration, or another workspace's
    :raises InvalidInput: duplicate or unknown ids, nothing left to rank, unknown actions
        where the configuration forbids adding them, or features the catalog refuses
    :raises Conflict: the configuration is PAUSED or INACTIVE; or the event id was ranked
        before with other contextFeatures, or without the action chosen then
    """
    snap = parts.engine.snapshot(session, principal, config_id)
    candidates = _rank_candidates(request)
    event_id = _event_id(request.event_id)
    decision_id = event_decision_id(config_id, event_id)
    logged = _logged(session, config_id, [decision_id])
    if not logged:
        snap = _with_actions(session, parts, catalog, principal, config_id, snap, request.actions)
        decide = _decision_request(
            snap, request, event_id, decision_id, candidates, dict(request.context)
        )
        answers, logged = _commit_once(
            session,
            parts,
            principal,
            config_id,
            [decision_id],
            lambda: [touchpoints.answer(session, parts, principal, config_id, decide)],
        )
        if not logged:
            return _ranked(snap, request, event_id, answers[0].result)
        # Read the configuration again after the rollback: the winning call may have added
        # actions to it.
        snap = parts.engine.snapshot(session, principal, config_id)
    return _replay(snap, request, event_id, logged[decision_id])


def _rank_candidates(request: RankRequest) -> list[str]:
    """The catalog ids of the call's actions less its excluded ones.

    :raises InvalidInput: the actions or excluded ids are not valid, or every action is
        excluded
    """
    _check_actions(request.actions, request.excluded, "excludedActions")
    candidates = _offered(request.actions, request.excluded)
    if not candidates:
        raise invalid(RANK_ERROR, "Every action is excluded: nothing to rank.", "excludedActions")
    return candidates


def _ranked(
    snap: ConfigSnapshot, request: RankRequest, event_id: str, result: Decision | NoDecision
) -> RankedEvent:
    """The answer to a call whose decision was just logged (or found nothing eligible)."""
    names = _names(snap, request.actions)
    order = [hpe_action_id(a.id) for a in request.actions]
    if not isinstance(result, Decision):
        return RankedEvent(
            event_id=event_id,
            ranking=tuple((names(a), 0.0) for a in order),
            reward_action_id=None,
            variant=None,
            reason=result.reason,
        )
    return RankedEvent(
        event_id=event_id,
        ranking=_ranking(result.action_id, result.ranked_pairs(), order, names),
        reward_action_id=names(result.action_id),
        variant=result.variant,
    )


def _replay(
    snap: ConfigSnapshot, request: RankRequest, event_id: str, logged: _Logged
) -> RankedEvent:
    """The first decision of an event, answered again (nothing is logged).

    :raises Conflict: the call does not repeat the first one
    """
    _check_repeat(event_id, request.context, logged, request.actions, request.excluded)
    pairs = sorted(
        zip(logged.eligible, logged.probabilities, strict=True), key=lambda p: p[1], reverse=True
    )
    names = _names(snap, request.actions)
    order = [hpe_action_id(a.id) for a in request.actions]
    return RankedEvent(
        event_id=event_id,
        ranking=_ranking(logged.action_id, pairs, order, names),
        reward_action_id=names(logged.action_id),
        variant=Variant(logged.variant),
        replayed=True,
    )


# --- Multi-slot Rank ----------------------------------------------------------------------


def rank_slots(
    session: Session,
    parts: TouchpointParts,
    catalog: Catalog,
    principal: Principal,
    config_id: uuid.UUID,
    request: MultiSlotRequest,
) -> MultiSlotResult:
    """Fill each slot in order with a different action, one logged decision per slot, all
    in one transaction (or answer the event's logged slots again).

    A slot's candidates are the actions less its ``excludedActions`` and less the actions
    the slots before it got; its id and features join the context under ``_slot``. A slot
    with no candidate left, or nothing eligible, gets no action (null).

    :raises: what :func:`rank` raises; and InvalidInput for slots without a unique id, or
        a ``baselineAction`` that is not one of the actions or is excluded from its slot
    """
    snap = parts.engine.snapshot(session, principal, config_id)
    _check_actions(request.actions, (), "actions")
    _check_slots(request.slots, {a.id for a in request.actions})
    event_id = _event_id(request.event_id)
    ids = {slot.id: slot_decision_id(config_id, event_id, slot.id) for slot in request.slots}
    logged = _logged(session, config_id, list(ids.values()))
    if not logged:
        snap = _with_actions(session, parts, catalog, principal, config_id, snap, request.actions)
        answers, logged = _commit_once(
            session,
            parts,
            principal,
            config_id,
            list(ids.values()),
            lambda: _fill_slots(session, parts, principal, config_id, snap, request, event_id, ids),
        )
        if not logged:
            names = _names(snap, request.actions)
            results = (
                _slot_result(slot.id, answer, names)
                for slot, answer in zip(request.slots, answers, strict=True)
            )
            return MultiSlotResult(event_id=event_id, slots=tuple(results))
    return _replay_slots(snap, request, event_id, ids, logged)


def _fill_slots(
    session: Session,
    parts: TouchpointParts,
    principal: Principal,
    config_id: uuid.UUID,
    snap: ConfigSnapshot,
    request: MultiSlotRequest,
    event_id: str,
    ids: Mapping[str, uuid.UUID],
) -> list[Answer | None]:
    """Decide each slot in order among the actions the slots before it did not get (the
    decisions are staged in the session, not committed).

    :returns: each slot's answer; None for a slot left without candidates
    """
    answers: list[Answer | None] = []
    chosen: set[str] = set()
    for slot in request.slots:
        candidates = [a for a in _offered(request.actions, slot.excluded) if a not in chosen]
        if not candidates:
            answers.append(None)
            continue
        context = {**request.context, SLOT_KEY: {**slot.features, "id": slot.id}}
        decide = _decision_request(snap, request, event_id, ids[slot.id], candidates, context)
        answered = touchpoints.answer(session, parts, principal, config_id, decide)
        answers.append(answered)
        if isinstance(answered.result, Decision):
            chosen.add(answered.result.action_id)
    return answers


def _slot_result(slot_id: str, answer: Answer | None, names: Callable[[str], str]) -> SlotResult:
    """A filled slot's answer: its action, or null when it had no candidate or nothing
    eligible."""
    if answer is not None and isinstance(answer.result, Decision):
        return SlotResult(slot_id, names(answer.result.action_id))
    return SlotResult(slot_id, None)


def _replay_slots(
    snap: ConfigSnapshot,
    request: MultiSlotRequest,
    event_id: str,
    ids: Mapping[str, uuid.UUID],
    logged: Mapping[uuid.UUID, _Logged],
) -> MultiSlotResult:
    names = _names(snap, request.actions)
    results = []
    for slot in request.slots:
        row = logged.get(ids[slot.id])
        if row is not None:
            context = {k: v for k, v in row.context.items() if k != SLOT_KEY}
            _check_repeat(
                event_id,
                request.context,
                row._replace(context=context),
                request.actions,
                slot.excluded,
            )
        results.append(SlotResult(slot.id, names(row.action_id) if row else None))
    return MultiSlotResult(event_id=event_id, slots=tuple(results), replayed=True)


# --- Shared steps -------------------------------------------------------------------------


def _event_id(given: str | None) -> str:
    """The call's event id, checked; a new one when it gave none.

    :raises InvalidInput: an event id that cannot be stored
    """
    return check_event_id(given) if given else new_event_id()


def _offered(actions: Sequence[RankAction], excluded: Iterable[str]) -> list[str]:
    """The catalog ids of the actions that are not excluded, in the call's order."""
    excluded = set(excluded)
    return [hpe_action_id(a.id) for a in actions if a.id not in excluded]


def _decision_request(
    snap: ConfigSnapshot,
    request: RankRequest | MultiSlotRequest,
    event_id: str,
    decision_id: uuid.UUID,
    candidates: list[str],
    context: dict,
) -> DecisionRequest:
    """A Rank decision: the event id stands for the user (treatment or holdout is drawn per
    event), on the configuration's first channel."""
    return DecisionRequest(
        user_id=event_id,
        channel=channel_of(snap.settings),
        context=context,
        candidates=candidates,
        decision_id=decision_id,
        deferred=request.defer,
    )


def _commit_once(
    session: Session,
    parts: TouchpointParts,
    principal: Principal,
    config_id: uuid.UUID,
    decision_ids: Sequence[uuid.UUID],
    decide: Callable[[], list[Answer | None]],
) -> tuple[list[Answer | None], dict[uuid.UUID, _Logged]]:
    """Stage an event's decisions with ``decide`` and commit them together, unless another
    call logged the event first.

    :returns: ``decide``'s answers and no logged decisions; or, when a call racing with
        this one logged the event first, no answers and that call's logged decisions
    """
    try:
        answers = decide()
        staged = [answer for answer in answers if answer is not None]
        _commit_if_logged(session, staged)
    except IntegrityError:
        # Another call logged this event first (same primary key): answer its decisions.
        session.rollback()
        logged = _logged(session, config_id, decision_ids)
        if not logged:
            raise
        return [], logged
    touchpoints.after_commit(parts, principal, config_id, staged)
    return answers, {}


def _check_actions(actions: Sequence[RankAction], excluded: Iterable[str], field: str) -> None:
    """:raises InvalidInput: no actions, too many, a duplicate id, or an excluded id that
    is not one of the actions"""
    if not actions:
        raise invalid(RANK_ERROR, "Give at least one action.", "actions")
    if len(actions) > MAX_ACTIONS:
        raise invalid(RANK_ERROR, f"At most {MAX_ACTIONS} actions per Rank call.", "actions")
    seen: set[str] = set()
    for action in actions:
        if action.id in seen:
            raise invalid(RANK_ERROR, f"Duplicate action id {action.id!r}.", "actions")
        seen.add(action.id)
    unknown = [a for a in excluded if a not in seen]
    if unknown:
        raise invalid(
            RANK_ERROR, f"{field} names ids that are not among the actions: {unknown[:5]}.", field
        )


def _check_slots(slots: Sequence[Slot], action_ids: set[str]) -> None:
    """:raises InvalidInput: as Personalizer refuses them: no slots, too many, a repeated
    slot id or baseline action, a baseline that is not an action or is excluded"""
    if not slots:
        raise invalid(RANK_ERROR, "Give at least one slot.", "slots")
    if len(slots) > MAX_SLOTS:
        raise invalid(RANK_ERROR, f"At most {MAX_SLOTS} slots per Rank call.", "slots")
    ids, baselines = set(), set()
    for slot in slots:
        if slot.id in ids:
            raise invalid(RANK_ERROR, f"Duplicate slot id {slot.id!r}.", "slots")
        ids.add(slot.id)
        if slot.baseline not in action_ids:
            raise invalid(
                RANK_ERROR,
                f"Slot {slot.id!r}: baselineAction {slot.baseline!r} is not one of the actions.",
                "slots",
            )
        if slot.baseline in slot.excluded:
            raise invalid(RANK_ERROR, f"Slot {slot.id!r}: its baselineAction is excluded.", "slots")
        if slot.baseline in baselines:
            raise invalid(
                RANK_ERROR,
                f"Slot {slot.id!r}: baselineAction {slot.baseline!r} is another slot's too.",
                "slots",
            )
        baselines.add(slot.baseline)
        unknown = [a for a in slot.excluded if a not in action_ids]
        if unknown:
            raise invalid(
                RANK_ERROR,
                f"Slot {slot.id!r}: excludedActions names ids that are not among the "
                f"actions: {unknown[:5]}.",
                "slots",
            )


def _with_actions(
    session: Session,
    parts: TouchpointParts,
    catalog: Catalog,
    principal: Principal,
    config_id: uuid.UUID,
    snap: ConfigSnapshot,
    actions: Sequence[RankAction],
) -> ConfigSnapshot:
    """The snapshot, once every action of the call is in the configuration's catalog.

    Unknown ids are added (committed in a transaction of their own) when the
    configuration allows it. The stored configuration is locked, then read again, before
    it is changed: the snapshot may be a second old, and two calls adding actions at once
    must not lose one's.

    :raises InvalidInput: adding is forbidden, or the catalog refuses an action
    """
    known = snap.settings.actions_by_id
    if all(hpe_action_id(a.id) in known for a in actions):
        return snap
    # Lock the row before reading it: a no-op UPDATE is a row lock on PostgreSQL and takes
    # SQLite's write lock, which SELECT ... FOR UPDATE cannot (SQLite reads outside the
    # transaction until its first write, so a read-then-write would lose an addition).
    session.execute(
        update(Config)
        .where(Config.id == config_id, Config.workspace_id == principal.workspace_id)
        .values(updated_at=Config.updated_at)
    )
    config = session.get(Config, config_id, populate_existing=True)
    if config is None or config.workspace_id != principal.workspace_id:
        raise NotFound(f"No configuration {config_id}.")
    settings = settings_of(config)
    missing = [a for a in actions if hpe_action_id(a.id) not in settings.actions_by_id]
    if missing:
        shown = ", ".join(repr(a.id) for a in missing[:5])
        if not settings.personalizer.dynamic_actions:
            session.rollback()
            raise invalid(
                RANK_ERROR,
                f"Unknown action id(s) {shown}: this configuration does not add actions from "
                "Rank calls (settings.personalizer.dynamic_actions is false).",
                "actions",
            )
        documents = list(settings.document["actions"])
        first_new = len(documents)
        documents += [action_document(a.id, a.features) for a in missing]
        try:
            configs.update(
                session, principal, catalog, config_id, settings_patch={"actions": documents}
            )
        except InvalidInput as exc:
            session.rollback()
            raise _catalog_refused(exc, missing, first_new) from exc
    session.commit()
    parts.engine.invalidate(config_id)
    return parts.engine.snapshot(session, principal, config_id)


def _catalog_refused(
    error: InvalidInput, missing: Sequence[RankAction], first_new: int
) -> InvalidInput:
    """The settings validation's refusal, told about the Rank's actions."""
    messages = []
    for path, message in flat_messages(error.errors.get("settings", {})):
        parts = path.split(".")
        if len(parts) >= 2 and parts[0] == "actions" and parts[1].isdigit():
            index = int(parts[1]) - first_new
            if 0 <= index < len(missing):
                where = ".".join(parts[2:])
                path = f"action {missing[index].id!r}" + (f" {where}" if where else "")
        messages.append(f"{path}: {message}")
    detail = "; ".join(messages[:5]) or error.message
    return invalid(RANK_ERROR, f"The catalog cannot take these actions: {detail}", "actions")


def _logged(
    session: Session, config_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, _Logged]:
    """The logged decisions among ``ids`` (one primary-key lookup)."""
    rows = session.execute(
        select(
            DecisionRow.id,
            DecisionRow.context,
            DecisionRow.action_id,
            DecisionRow.eligible,
            DecisionRow.probabilities,
            DecisionRow.variant,
        ).where(DecisionRow.config_id == config_id, DecisionRow.id.in_(list(ids)))
    )
    return {row.id: _Logged(*row) for row in rows}


def _check_repeat(
    event_id: str,
    context: Mapping,
    logged: _Logged,
    actions: Sequence[RankAction],
    excluded: Iterable[str],
) -> None:
    """:raises Conflict: a repeated event id whose call differs from the first one"""
    stored = logged.context or {}
    if any(key not in stored or stored[key] != value for key, value in context.items()):
        raise coded(
            Conflict(
                f"eventId {event_id!r} was ranked before with other contextFeatures. "
                "Give each Rank call its own eventId."
            ),
            RANK_ERROR,
        )
    if logged.action_id not in _offered(actions, excluded):
        raise coded(
            Conflict(
                f"eventId {event_id!r} was ranked before, and this call's actions do not "
                "include the action chosen then. Give each Rank call its own eventId."
            ),
            RANK_ERROR,
        )


def _commit_if_logged(session: Session, answers: Sequence[Answer]) -> None:
    """Commit when a decision was logged; otherwise end the (empty) transaction."""
    if any(answer.logged for answer in answers):
        session.commit()
    else:
        session.rollback()


def _names(snap: ConfigSnapshot, actions: Sequence[RankAction]) -> Callable[[str], str]:
    """Catalog id → the Personalizer id the caller knows (its own spelling first)."""
    given = {hpe_action_id(a.id): a.id for a in actions}
    catalogued = snap.settings.actions_by_id

    def name(action_id: str) -> str:
        if action_id in given:
            return given[action_id]
        action = catalogued.get(action_id)
        return personalizer_id(action) if action is not None else action_id

    return name


def _ranking(
    chosen: str,
    pairs: Sequence[tuple[str, float]],
    order: Sequence[str],
    names: Callable[[str], str],
) -> tuple[tuple[str, float], ...]:
    """The chosen action first, then the other eligible ones by probability, then the
    request's actions that were not eligible, with probability 0."""
    probability = dict(pairs)
    shown = [(chosen, probability.get(chosen, 0.0))]
    shown += [(a, p) for a, p in pairs if a != chosen]
    listed = {a for a, _p in shown}
    shown += [(a, 0.0) for a in order if a not in listed]
    return tuple((names(a), float(p)) for a, p in shown)
