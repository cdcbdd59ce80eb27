"""Connected content: an email (or SMS, push) tool fetches a decision while it renders a
message, at send time (Braze Connected Content, Iterable data feeds, Customer.io webhook
actions).

``GET /{id}/decisions/connected?user_id=…&channel=email&ctx.<key>=…&send_id=…`` answers a
decision through the same path as ``POST /{id}/decisions`` (eligibility, guardrails,
assignment, policy, one logged decision, ``hpe_on_decision``), with the context given as
query parameters. Such tools fetch the same URL more than once for one message (one
render for the HTML part and one for the text part, retries): with a ``send_id`` (the
tool's campaign or dispatch id), the decision id is derived from the configuration,
channel, user and send, so every fetch for one person's message answers the one decision
logged by the first (``replayed: true``), and a concurrent duplicate is caught by the
primary key.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import uuid
from collections.abc import Mapping

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hpe_core.decide.decisions import DecisionRequest
from hpe_core.decide.results import Decision
from hpe_core.deliver import touchpoints
from hpe_core.errors import InvalidInput, NotFound
from hpe_core.store.models import Config
from hpe_core.store.models import Decision as DecisionRow
from hpe_core.store.vocabulary import Policy, Variant
from hpe_core.tenancy.configs import settings_of
from hpe_core.tenancy.settings_types import Action
from hpe_core.tenancy.workspaces import Principal

CONTEXT_PREFIX = "ctx."
MAX_CONTEXT_KEYS = 50
MAX_CONTEXT_VALUE = 500
MAX_SEND_ID = 200
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,63}")
_NUMBER = re.compile(r"-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,12})?")


@dataclasses.dataclass(frozen=True)
class Fetched:
    """A connected-content answer.

    :param answer: the decision answer (as ``POST /{id}/decisions`` gives it)
    :param content: the chosen action's content for the channel (``{}`` when none)
    :param replayed: the decision was logged by an earlier fetch of the same send
    """

    answer: dict
    content: Mapping
    replayed: bool


def context_from_query(query: Mapping[str, str]) -> dict:
    """The decision context from ``ctx.<key>=<value>`` parameters.

    Values that are plain decimal numbers become numbers (``ctx.age=42``); ``true`` and
    ``false`` become booleans; everything else stays text.

    :raises InvalidInput: a bad key, a value too long, or too many keys
    """
    context: dict = {}
    errors: dict = {}
    for name, value in query.items():
        if not name.startswith(CONTEXT_PREFIX):
            continue
        key = name[len(CONTEXT_PREFIX) :]
        if not _KEY.fullmatch(key):
            errors[name] = ["A key of letters, digits, _ . : - (at most 64)."]
        elif len(value) > MAX_CONTEXT_VALUE:
            errors[name] = [f"At most {MAX_CONTEXT_VALUE} characters."]
        else:
            context[key] = _typed(value)
    if len(context) > MAX_CONTEXT_KEYS:
        errors["ctx"] = [f"At most {MAX_CONTEXT_KEYS} context keys."]
    if errors:
        raise InvalidInput("Invalid context parameters.", errors)
    return context


def _typed(value: str) -> object:
    if value in ("true", "false"):
        return value == "true"
    if _NUMBER.fullmatch(value):
        number = float(value)
        if math.isfinite(number):
            return int(number) if "." not in value else number
    return value


def decision_id_for(config_id: uuid.UUID, channel: str, user_id: str, send_id: str) -> uuid.UUID:
    """The one decision id of a person's message in a send."""
    return uuid.uuid5(config_id, json.dumps(["connected", channel, user_id, send_id]))


def check_send_id(send_id: str | None) -> str | None:
    """:raises InvalidInput: a send id that is empty or too long"""
    if send_id is None:
        return None
    if not send_id.strip() or len(send_id) > MAX_SEND_ID:
        raise InvalidInput("Invalid send_id.", {"send_id": [f"1 to {MAX_SEND_ID} characters."]})
    return send_id


def fetch(
    session: Session,
    parts: touchpoints.TouchpointParts,
    principal: Principal,
    config_id: uuid.UUID,
    request: DecisionRequest,
    send_id: str | None = None,
) -> Fetched:
    """Answer one fetch: the stored decision of this send, or a new one (committed).

    :raises: what :func:`hpe_core.deliver.touchpoints.answer` raises (404, 409, 422)
    """
    if send_id is not None:
        decision_id = decision_id_for(config_id, request.channel, request.user_id, send_id)
        stored = _stored(session, principal, config_id, decision_id)
        if stored is not None:
            return stored
        request = dataclasses.replace(request, decision_id=decision_id)
    try:
        answer = touchpoints.decide_and_deliver(session, parts, principal, config_id, request)
    except IntegrityError:
        # A concurrent fetch of the same send logged it first: answer that one.
        session.rollback()
        stored = _stored(session, principal, config_id, request.decision_id)
        if stored is None:
            raise
        return stored
    return Fetched(answer, _content(answer, request.channel), replayed=False)


def _content(answer: Mapping, channel: str) -> Mapping:
    action = answer.get("action") or {}
    return (action.get("content") or {}).get(channel) or {}


def _stored(
    session: Session, principal: Principal, config_id: uuid.UUID, decision_id: uuid.UUID | None
) -> Fetched | None:
    """The answer of a decision already logged for this send, or None."""
    row = session.get(DecisionRow, decision_id) if decision_id else None
    if row is None:
        return None
    if row.config_id != config_id or row.workspace_id != principal.workspace_id:
        raise NotFound(f"No configuration {config_id}.")  # never tell another's ids apart
    config = session.get(Config, config_id)
    action = settings_of(config).actions_by_id.get(row.action_id) or Action.of(
        {"id": row.action_id}
    )
    result = Decision(
        decision_id=row.id,
        action=action,
        probability=row.probability,
        variant=Variant(row.variant),
        policy=Policy(row.policy),
        model_version=row.model_version,
        eligible=tuple(row.eligible),
        probabilities=tuple(row.probabilities),
    )
    answer = touchpoints.response(result)
    return Fetched(answer, _content(answer, row.channel), replayed=True)
