"""What a workspace's admin does to its people and API keys (the dashboard's admin pages).

The same services as ``hpe user`` and ``hpe keys`` (:mod:`~hpe_core.tenancy.people`,
:mod:`~hpe_core.tenancy.workspaces`), bounded to the admin's own workspace and logged
with the admin (``user:<email>``) as the actor. The command line is an operator's and
reaches everyone; an admin of one workspace never reaches into another. Disabling a
person or resetting their password acts on their account, in every workspace they
belong to, so it needs the admin's role in each of those workspaces.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpe_core.errors import Conflict, Forbidden, InvalidInput, NotFound
from hpe_core.store.models import ApiKey, Membership, User
from hpe_core.store.vocabulary import KeyKind, Role
from hpe_core.tenancy import activities, passwords, people, workspaces
from hpe_core.tenancy.people import Person

KEY_CREATED = "key.created"
KEY_REVOKED = "key.revoked"
#: The longest key label and display name kept (the columns' lengths).
MAX_NAME_LENGTH = 200


@dataclasses.dataclass(frozen=True)
class Added:
    """A person added to the workspace.

    :param password: the generated password, shown once; None when the person already
        had an account (from another workspace) and keeps their password
    """

    email: str
    role: Role
    password: str | None


@dataclasses.dataclass(frozen=True)
class Member:
    """A person of the admin's workspace, as the people page lists them."""

    user: User
    role: Role
    #: False when they also belong to a workspace this admin does not administer: then
    #: only an operator may disable them or reset their password.
    manageable: bool


# --- People -------------------------------------------------------------------------------


def members(session: Session, admin: Person) -> list[Member]:
    """The people of the admin's workspace, by address."""
    reach = _administered(session, admin)
    rows = people.list_people(session, admin.workspace_id)
    others = _workspaces_of(session, [user.id for user, _ws, _role in rows])
    return [
        Member(user=user, role=Role(role), manageable=others.get(user.id, set()) <= reach)
        for user, _workspace, role in rows
    ]


def add_person(
    session: Session,
    admin: Person,
    email: str,
    *,
    role: Role | str,
    name: str = "",
    password_cost: int = passwords.COST,
) -> Added:
    """Give a person a role in the admin's workspace, creating their account if needed.

    :raises InvalidInput: a bad address, role or name (per field)
    :raises Conflict: they already belong to the workspace
    """
    name = (name or "").strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput("Name too long.", {"name": [f"At most {MAX_NAME_LENGTH} characters."]})
    existing = session.scalar(select(User).where(User.email == people.normalize_email(email)))
    user, password = people.create_user(
        session,
        email,
        workspace_id=admin.workspace_id,
        role=role,
        name=name,
        actor=admin.actor,
        password_cost=password_cost,
    )
    return Added(email=user.email, role=Role(role), password=None if existing else password)


def member(session: Session, admin: Person, email: str) -> User:
    """A person of the admin's workspace.

    :raises NotFound: nobody with this address belongs to the workspace
    """
    try:
        user = people.get_user(session, email)
    except InvalidInput:
        raise NotFound(f"Nobody is registered as {email}.") from None
    if session.get(Membership, (user.id, admin.workspace_id)) is None:
        raise NotFound(f"{user.email} does not belong to workspace {admin.workspace_id}.")
    return user


def change_role(session: Session, admin: Person, email: str, role: Role | str) -> None:
    """:raises Conflict: it would leave the workspace without an admin"""
    user = member(session, admin, email)
    people.set_role(session, user.email, admin.workspace_id, role, actor=admin.actor)


def disable_person(session: Session, admin: Person, email: str) -> User:
    """Disable a person: no more sign-ins, their sessions end at once.

    :raises Conflict: the admin is disabling themselves
    :raises Forbidden: they also belong to a workspace the admin does not administer
    """
    user = _reachable(session, admin, email, "disable")
    return people.disable_user(session, user.email, actor=admin.actor)


def reset_password(
    session: Session, admin: Person, email: str, *, password_cost: int = passwords.COST
) -> str:
    """Give a person a new generated password (shown once); their sessions end.

    :raises Conflict: the admin is resetting their own password
    :raises Forbidden: they also belong to a workspace the admin does not administer
    """
    user = _reachable(session, admin, email, "reset the password of")
    return people.reset_password(
        session, user.email, actor=admin.actor, password_cost=password_cost
    )


def _reachable(session: Session, admin: Person, email: str, doing: str) -> User:
    user = member(session, admin, email)
    if user.id == admin.user_id:
        raise Conflict(f"You cannot {doing} yourself here: ask another admin.")
    theirs = _workspaces_of(session, [user.id]).get(user.id, set())
    if not theirs <= _administered(session, admin):
        raise Forbidden(
            f"{user.email} also belongs to a workspace you do not administer: an operator "
            f"can do this with the hpe command."
        )
    return user


def _administered(session: Session, admin: Person) -> set[str]:
    return {
        workspace_id
        for workspace_id, role in people.workspaces_of(session, admin.user_id).items()
        if role == Role.ADMIN
    }


def _workspaces_of(session: Session, user_ids: list) -> dict:
    found: dict = {}
    if user_ids:
        rows = session.execute(
            select(Membership.user_id, Membership.workspace_id).where(
                Membership.user_id.in_(user_ids)
            )
        )
        for row in rows:
            found.setdefault(row.user_id, set()).add(row.workspace_id)
    return found


# --- API keys -----------------------------------------------------------------------------


def create_key(
    session: Session, admin: Person, *, name: str = "", kind: KeyKind | str = KeyKind.SECRET
) -> tuple[ApiKey, str]:
    """Issue a key for the admin's workspace.

    :returns: the stored key and the full key, shown once and never again
    :raises InvalidInput: an unknown kind or a name that is too long (per field)
    """
    name = (name or "").strip()
    errors = {}
    if kind not in tuple(KeyKind):
        errors["kind"] = [f"Choose one of: {', '.join(KeyKind)}."]
    if len(name) > MAX_NAME_LENGTH:
        errors["name"] = [f"At most {MAX_NAME_LENGTH} characters."]
    if errors:
        raise InvalidInput("Check the highlighted fields.", errors)
    row, key = workspaces.create_key(session, admin.workspace_id, name=name, kind=kind)
    _log(session, admin, KEY_CREATED, prefix=row.prefix, kind=row.kind, name=row.name)
    return row, key


def key_of(session: Session, admin: Person, prefix: str) -> ApiKey:
    """:raises NotFound: no key of the admin's workspace has this prefix"""
    row = session.scalar(
        select(ApiKey).where(
            ApiKey.prefix == (prefix or "")[: workspaces.PREFIX_LENGTH],
            ApiKey.workspace_id == admin.workspace_id,
        )
    )
    if row is None:
        raise NotFound(f"No key of workspace {admin.workspace_id} starts with {prefix}.")
    return row


def revoke_key(session: Session, admin: Person, prefix: str) -> ApiKey:
    """Revoke one of the workspace's keys (revoking twice is harmless)."""
    row = key_of(session, admin, prefix)
    if row.revoked_at is None:
        workspaces.revoke_key(session, row.prefix)
        _log(session, admin, KEY_REVOKED, prefix=row.prefix, kind=row.kind, name=row.name)
    return row


def _log(session: Session, admin: Person, type: str, **data) -> None:
    activities.record(
        session,
        workspace_id=admin.workspace_id,
        config_id=None,
        type=type,
        actor=admin.actor,
        data=data,
    )
