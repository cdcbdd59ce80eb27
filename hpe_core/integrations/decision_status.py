"""One logged decision as an integrator looks it up (``GET /{id}/decisions/{decision_id}``):
what was chosen and why (propensities, variant, model version), what came back
(outcomes, reward) and, when HPE was asked to deliver it, where its delivery stands."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpe_core.errors import NotFound
from hpe_core.store.models import Decision, Delivery, Outcome
from hpe_core.tenancy import configs
from hpe_core.tenancy.workspaces import Principal


def lookup(
    session: Session, principal: Principal, config_id: uuid.UUID, decision_id: uuid.UUID
) -> dict:
    """The decision, its outcomes (oldest first) and its delivery (None: not delivered by
    HPE).

    :raises NotFound: no such decision in this configuration of the caller's workspace
    """
    config = configs.get(session, principal, config_id)
    row = session.get(Decision, decision_id)
    if row is None or row.config_id != config.id:
        raise NotFound(f"No decision {decision_id} in this configuration.")
    outcomes = session.execute(
        select(Outcome.type, Outcome.value, Outcome.occurred_at, Outcome.received_at, Outcome.late)
        .where(Outcome.decision_id == row.id)
        .order_by(Outcome.occurred_at, Outcome.id)
    )
    delivery = session.scalar(select(Delivery).where(Delivery.decision_id == row.id))
    return {
        "decision_id": row.id,
        "config_id": row.config_id,
        "created_at": row.created_at,
        "user_id": row.user_id,
        "channel": row.channel,
        "action_id": row.action_id,
        "probability": row.probability,
        "propensities": dict(zip(row.eligible or (), row.probabilities or (), strict=False)),
        "variant": row.variant,
        "policy": row.policy,
        "model_version": row.model_version,
        "source": row.source,
        "context": row.context or {},
        "window_closes_at": row.window_closes_at,
        "learned_at": row.learned_at,
        "reward": row.reward,
        "engaged": row.engaged,
        "outcomes": [dict(outcome._mapping) for outcome in outcomes],
        "delivery": _delivery(delivery) if delivery is not None else None,
    }


def _delivery(row: Delivery) -> dict:
    result = dict(row.result or {})
    return {
        "id": row.id,
        "status": row.status,
        "attempts": row.attempts,
        "error": row.error,
        "provider_id": result.pop("provider_id", None),
        "result": result,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "sent_at": row.sent_at,
    }
