"""First answers kept under idempotency keys (Stripe's rule, shared/DESIGN.md §5).

A request that carries a key *claims* it inside its own transaction (an insert that waits
for, or conflicts with, any other request under the same key), does its work, and
:func:`remember`\\ s its answer in the same transaction. So two requests under one key never
both do the work: on PostgreSQL the second insert waits until the first commits (then
replays its answer) or rolls back (then claims the key itself); SQLite has one writer.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hpe_core.errors import Conflict
from hpe_core.store.db import dialect_insert
from hpe_core.store.models import IdempotencyKey, utcnow

_KEYS = IdempotencyKey.__table__


def digest(body: bytes) -> str:
    """The fingerprint of a request body."""
    return hashlib.sha256(body).hexdigest()


def claim(
    session: Session, workspace_id: str, key: str, scope: str, request_digest: str
) -> tuple[int, dict] | None:
    """Claim ``key`` for this request, or find the first answer given under it.

    :returns: None when this request claimed the key (do the work, then :func:`remember`
        its answer before committing); else the first request's ``(status, answer)``
    :raises Conflict: the key was used for another request (another body or scope)
    """
    inserted = session.scalar(
        dialect_insert(session, _KEYS)
        .values(
            workspace_id=workspace_id,
            key=key,
            scope=scope,
            request_digest=request_digest,
            status=0,
            response={},
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["workspace_id", "key"])
        .returning(_KEYS.c.key)
    )
    if inserted is not None:
        return None
    first = session.execute(
        select(IdempotencyKey.scope, IdempotencyKey.request_digest, IdempotencyKey.status,
               IdempotencyKey.response).where(
            IdempotencyKey.workspace_id == workspace_id, IdempotencyKey.key == key
        )
    ).one()
    if first.scope != scope or first.request_digest != request_digest:
        raise Conflict(
            "This Idempotency-Key was used for another request: send a new key with a new "
            "request (the same key must carry the same request).",
            {"Idempotency-Key": ["Used before for another request."]},
        )
    return first.status, first.response


def remember(session: Session, workspace_id: str, key: str, status: int, answer: dict) -> None:
    """Keep this request's answer under the key it claimed (the caller commits both)."""
    session.execute(
        update(_KEYS)
        .where(_KEYS.c.workspace_id == workspace_id, _KEYS.c.key == key)
        .values(status=status, response=answer)
    )
