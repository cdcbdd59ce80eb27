"""Workspaces and their API keys: create, authenticate, list, revoke.

A key is ``hpe_sk_<random>`` (secret: the whole API) or ``hpe_pk_<random>`` (publishable:
decisions and outcomes only, safe to put in a web page). Only its SHA-256 is stored; its
first characters (the prefix) stay in clear to find it and to name it in logs. Keys carry
256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hpe_core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from hpe_core.store.models import ApiKey, Workspace, utcnow

KEY_KINDS = {"secret": "sk", "publishable": "pk"}
PREFIX_LENGTH = 15  # "hpe_sk_" + 8 random characters
_WORKSPACE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # fullmatch: "$" would let "\n" in
WORKSPACE_ID_RULE = (
    "A workspace id is 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter or digit."
)
# What create_key makes: "hpe_", a kind, "_", then URL-safe base64. Anything else (e.g. a
# NUL byte, which PostgreSQL refuses in a query parameter) is malformed before any lookup.
_KEY_FORMAT = re.compile(r"hpe_[a-z]{2}_[A-Za-z0-9_-]{8,200}")


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is calling: the workspace a key belongs to, and the key's printable prefix."""

    workspace_id: str
    actor: str
    kind: str = "secret"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_workspace(session: Session, workspace_id: str, name: str | None = None) -> Workspace:
    """Create a workspace.

    :raises InvalidInput: if the id is not a lowercase slug of at most 64 characters
    :raises Conflict: if the workspace exists
    """
    if not valid_workspace_id(workspace_id):
        raise InvalidInput(WORKSPACE_ID_RULE, {"workspace_id": [WORKSPACE_ID_RULE]})
    if session.get(Workspace, workspace_id) is not None:
        raise Conflict(f"Workspace {workspace_id} already exists.")
    workspace = Workspace(id=workspace_id, name=name or workspace_id)
    session.add(workspace)
    session.flush()
    return workspace


def valid_workspace_id(workspace_id: str | None) -> bool:
    return bool(_WORKSPACE_ID.fullmatch(workspace_id or ""))


def get_workspace(session: Session, workspace_id: str) -> Workspace:
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        raise NotFound(f"No workspace {workspace_id}.")
    return workspace


def list_workspaces(session: Session) -> list[Workspace]:
    return list(session.scalars(select(Workspace).order_by(Workspace.id)))


def create_key(
    session: Session, workspace_id: str, *, name: str = "", kind: str = "secret"
) -> tuple[ApiKey, str]:
    """Issue a new key for a workspace.

    :returns: the stored key row and the full key, which is shown once and never again
    """
    get_workspace(session, workspace_id)
    if kind not in KEY_KINDS:
        raise InvalidInput(f"Key kind must be one of: {', '.join(KEY_KINDS)}.")
    for _ in range(5):  # a prefix collision is astronomically rare; retry rather than fail
        key = f"hpe_{KEY_KINDS[kind]}_{secrets.token_urlsafe(32)}"
        row = ApiKey(
            workspace_id=workspace_id,
            name=name,
            kind=kind,
            prefix=key[:PREFIX_LENGTH],
            secret_hash=_hash(key),
        )
        try:
            with session.begin_nested():
                session.add(row)
            return row, key
        except IntegrityError:
            continue
    raise Conflict("Could not allocate a unique key prefix; try again.")  # pragma: no cover


def list_keys(session: Session, workspace_id: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.workspace_id, ApiKey.created_at)
    if workspace_id is not None:
        query = query.where(ApiKey.workspace_id == workspace_id)
    return list(session.scalars(query))


def revoke_key(session: Session, prefix: str) -> ApiKey:
    """Revoke the key with this prefix (or whole key). Revoking twice is harmless."""
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix[:PREFIX_LENGTH]))
    if row is None:
        raise NotFound(f"No key with prefix {prefix[:PREFIX_LENGTH]}.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def revocations(session: Session) -> tuple:
    """How many keys were ever revoked, and the latest revocation: changes whenever any
    key is revoked, so a process that caches verified keys can tell when to forget them."""
    count, latest = session.execute(
        select(func.count(ApiKey.revoked_at), func.max(ApiKey.revoked_at))
    ).one()
    return count, latest


def authenticate(session: Session, key: str | None) -> Principal:
    """Return who holds this key.

    :raises Unauthorized: if the key is missing, malformed, unknown or revoked
    """
    if not key or not _KEY_FORMAT.fullmatch(key) or len(key) < PREFIX_LENGTH + 8:
        raise Unauthorized("Missing or malformed API key: send 'Authorization: Bearer <key>'.")
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == key[:PREFIX_LENGTH]))
    # compare_digest: the time taken must not tell how much of a guessed key was right
    if row is None or not hmac.compare_digest(row.secret_hash, _hash(key)):
        raise Unauthorized("Unknown API key.")
    if row.revoked_at is not None:
        raise Unauthorized("This API key has been revoked.")
    return Principal(workspace_id=row.workspace_id, actor=row.prefix, kind=row.kind)
