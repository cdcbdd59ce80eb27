"""People who sign in to the dashboard: accounts, roles per workspace, sign-in, first run.

API keys stay for machines; people get an email, a password (hashed with scrypt, see
:mod:`hpe_core.tenancy.passwords`) and a role in each workspace they belong to
(:class:`~hpe_core.store.vocabulary.Role`). Every sign-in, failed sign-in and change to a
person is an activity of the workspace, with the person (``user:<email>``) as the actor.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import secrets
import uuid

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hpe_core.errors import Conflict, InvalidInput, NotFound, RateLimited, Unauthorized
from hpe_core.store.models import Membership, SetupToken, User, utcnow
from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import activities, passwords, workspaces
from hpe_core.tenancy.workspaces import Principal

#: Failed sign-ins in a row before the account is locked for a while.
FREE_ATTEMPTS = 5
#: The first lock, doubled for every further failure, capped (a typo never locks a person
#: out for long; a guesser gets a few attempts an hour).
FIRST_LOCK = dt.timedelta(seconds=30)
LONGEST_LOCK = dt.timedelta(minutes=15)
# Deliberately loose: one @, something on each side, no spaces. The address is only ever
# used to sign in, never to send mail, so a stricter pattern would only refuse real people.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,189}\Z")

SIGNED_IN = "person.signed_in"
SIGN_IN_FAILED = "person.sign_in_failed"
PERSON_CREATED = "person.created"
PERSON_DISABLED = "person.disabled"
PASSWORD_RESET = "person.password_reset"
ROLE_CHANGED = "person.role_changed"
SETUP_COMPLETED = "setup.completed"


@dataclasses.dataclass(frozen=True)
class Person:
    """A signed-in person in one workspace: what the dashboard's views act as.

    :param epoch: the account's session epoch when the session began (sessions of an
        older epoch are over)
    """

    user_id: uuid.UUID
    email: str
    name: str
    workspace_id: str
    role: Role
    epoch: int

    @property
    def actor(self) -> str:
        return actor_of(self.email)

    def principal(self) -> Principal:
        """The principal the domain services act for (changes are logged as this person)."""
        return Principal(workspace_id=self.workspace_id, actor=self.actor)

    def may(self, needed: Role) -> bool:
        return self.role.allows(needed)


def actor_of(email: str) -> str:
    return f"user:{email}"


def normalize_email(email: str) -> str:
    """The stored form of an address.

    :raises InvalidInput: it is not an address
    """
    email = (email or "").strip().lower()
    if not _EMAIL.fullmatch(email):
        raise InvalidInput("Invalid email address.", {"email": ["Not an email address."]})
    return email


# --- Accounts -----------------------------------------------------------------------------


def create_user(
    session: Session,
    email: str,
    *,
    workspace_id: str,
    role: Role = Role.EDITOR,
    password: str | None = None,
    name: str = "",
    actor: str = "cli",
    password_cost: int = passwords.COST,
) -> tuple[User, str]:
    """Create a person with a role in a workspace (or add an existing one to it).

    :param password: the person's password; None generates one
    :returns: the account and its password (generated or given: shown once)
    :raises Conflict: the person already belongs to that workspace
    :raises InvalidInput: a bad address, role or password
    :raises NotFound: no such workspace
    """
    email = normalize_email(email)
    role = _role(role)
    workspaces.get_workspace(session, workspace_id)
    if password is None:
        password = passwords.generate_password()
    elif problem := passwords.password_problem(password):
        raise InvalidInput(problem, {"password": [problem]})
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(
            email=email,
            name=name,
            password_hash=passwords.hash_password(password, cost=password_cost),
            session_epoch=0,
            failed_sign_ins=0,
        )
        session.add(user)
        session.flush()
    elif session.get(Membership, (user.id, workspace_id)) is not None:
        raise Conflict(f"{email} already belongs to workspace {workspace_id}.")
    session.add(Membership(user_id=user.id, workspace_id=workspace_id, role=role))
    _log(session, workspace_id, PERSON_CREATED, actor, email=email, role=role)
    return user, password


def list_people(session: Session, workspace_id: str | None = None) -> list[tuple[User, str, str]]:
    """People with their workspace and role, by workspace then address."""
    query = (
        select(User, Membership.workspace_id, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .order_by(Membership.workspace_id, User.email)
    )
    if workspace_id is not None:
        query = query.where(Membership.workspace_id == workspace_id)
    return [(row.User, row.workspace_id, row.role) for row in session.execute(query)]


def get_user(session: Session, email: str) -> User:
    """:raises NotFound: nobody has this address"""
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise NotFound(f"Nobody is registered as {email}.")
    return user


def disable_user(session: Session, email: str, *, actor: str = "cli") -> User:
    """Disable a person: no more sign-ins, and every session of theirs ends at once."""
    user = get_user(session, email)
    if user.disabled_at is None:
        user.disabled_at = utcnow()
        user.session_epoch += 1
        for workspace_id in _workspaces_of(session, user.id):
            _log(session, workspace_id, PERSON_DISABLED, actor, email=user.email)
    return user


def reset_password(
    session: Session,
    email: str,
    password: str | None = None,
    *,
    actor: str = "cli",
    password_cost: int = passwords.COST,
) -> str:
    """Set a new password (generated when None), end the person's sessions and unlock them.

    :returns: the new password (shown once)
    """
    user = get_user(session, email)
    if password is None:
        password = passwords.generate_password()
    elif problem := passwords.password_problem(password):
        raise InvalidInput(problem, {"password": [problem]})
    user.password_hash = passwords.hash_password(password, cost=password_cost)
    user.session_epoch += 1
    user.failed_sign_ins, user.locked_until = 0, None
    for workspace_id in _workspaces_of(session, user.id):
        _log(session, workspace_id, PASSWORD_RESET, actor, email=user.email)
    return password


def set_role(session: Session, email: str, workspace_id: str, role: Role, *, actor: str) -> None:
    """Change a person's role in a workspace.

    :raises Conflict: it would leave the workspace without an admin
    """
    user = get_user(session, email)
    membership = session.get(Membership, (user.id, workspace_id))
    if membership is None:
        raise NotFound(f"{user.email} does not belong to workspace {workspace_id}.")
    role = _role(role)
    if membership.role == Role.ADMIN and role != Role.ADMIN and _admins(session, workspace_id) < 2:
        raise Conflict("A workspace keeps at least one admin.")
    if membership.role != role:
        _log(session, workspace_id, ROLE_CHANGED, actor, email=user.email, to=role)
        membership.role = role


def anyone_exists(session: Session) -> bool:
    """True once a person exists (the first-run setup link is then dead)."""
    return session.scalar(select(func.count()).select_from(User)) > 0


# --- Signing in ---------------------------------------------------------------------------


def sign_in(
    session: Session,
    email: str,
    password: str,
    *,
    workspace_id: str | None = None,
    now: dt.datetime | None = None,
    password_cost: int = passwords.COST,
) -> Person:
    """Check a password and start acting as the person in one of their workspaces.

    :param workspace_id: the workspace to act in; None: the first of theirs
    :raises Unauthorized: unknown address, wrong password, disabled, or no workspace (one
        message for all: the answer never tells whether an address is registered)
    :raises RateLimited: too many failures in a row; ``retry_after`` says when to retry
    """
    now = now or utcnow()
    refused = Unauthorized("Wrong email or password.")
    try:
        email = normalize_email(email)
    except InvalidInput:
        raise refused from None
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        passwords.burn_time_like_a_verification(password, cost=password_cost)
        raise refused
    if user.locked_until is not None and user.locked_until > now:
        raise RateLimited(
            "Too many failed sign-ins: try again in a moment.",
            retry_after=(user.locked_until - now).total_seconds(),
        )
    memberships = _memberships(session, user.id)
    if not passwords.verify_password(password, user.password_hash):
        _failed(session, user, memberships, now)
        raise refused
    if user.disabled_at is not None or not memberships:
        raise refused
    role = memberships.get(workspace_id) if workspace_id else None
    if role is None:
        workspace_id, role = next(iter(memberships.items()))
    if passwords.needs_rehash(user.password_hash, cost=password_cost):
        user.password_hash = passwords.hash_password(password, cost=password_cost)
    user.failed_sign_ins, user.locked_until = 0, None
    user.first_sign_in_at = user.first_sign_in_at or now
    user.last_sign_in_at = now
    _log(session, workspace_id, SIGNED_IN, actor_of(email))
    return _person(user, workspace_id, role)


def resume(session: Session, user_id: uuid.UUID, workspace_id: str, epoch: int) -> Person | None:
    """The person of a session cookie, or None when that session is over (disabled,
    password reset, removed from the workspace)."""
    user = session.get(User, user_id)
    if user is None or user.disabled_at is not None or user.session_epoch != epoch:
        return None
    membership = session.get(Membership, (user_id, workspace_id))
    if membership is None:
        return None
    return _person(user, workspace_id, Role(membership.role))


def switch_workspace(session: Session, person: Person, workspace_id: str) -> Person:
    """:raises NotFound: the person does not belong to that workspace"""
    membership = session.get(Membership, (person.user_id, workspace_id))
    if membership is None:
        raise NotFound(f"No workspace {workspace_id}.")
    return dataclasses.replace(person, workspace_id=workspace_id, role=Role(membership.role))


def workspaces_of(session: Session, user_id: uuid.UUID) -> dict[str, Role]:
    """The person's workspaces and roles, by workspace id."""
    return _memberships(session, user_id)


def _failed(session: Session, user: User, memberships: dict, now: dt.datetime) -> None:
    # One UPDATE with the increment in SQL: concurrent failures in several processes
    # each count (a read-modify-write would lose some and hand out free attempts).
    failures = session.scalar(
        update(User)
        .where(User.id == user.id)
        .values(failed_sign_ins=User.failed_sign_ins + 1)
        .returning(User.failed_sign_ins)
    )
    if failures >= FREE_ATTEMPTS:
        lock = min(FIRST_LOCK * 2 ** (failures - FREE_ATTEMPTS), LONGEST_LOCK)
        session.execute(update(User).where(User.id == user.id).values(locked_until=now + lock))
    for workspace_id in memberships:
        _log(session, workspace_id, SIGN_IN_FAILED, actor_of(user.email), failures=failures)


# --- First run ----------------------------------------------------------------------------


def issue_setup_token(session: Session) -> str | None:
    """A one-time link token to create the first admin, while nobody exists yet.

    :returns: the token (shown once; only its hash is kept), or None when someone exists
    """
    if anyone_exists(session):
        return None
    token = secrets.token_urlsafe(32)
    session.add(SetupToken(token_hash=_digest(token)))
    return token


def setup_token_valid(session: Session, token: str) -> bool:
    row = session.get(SetupToken, _digest(token or ""))
    return row is not None and row.used_at is None and not anyone_exists(session)


def complete_setup(
    session: Session,
    token: str,
    *,
    email: str,
    password: str,
    workspace_id: str,
    workspace_name: str = "",
    password_cost: int = passwords.COST,
) -> User:
    """Create the first workspace and its admin through a setup link, and spend the link.

    :raises Unauthorized: the link is unknown, used, or someone already exists
    :raises InvalidInput: a bad address, password or workspace id (per field)
    """
    row = session.get(SetupToken, _digest(token or ""), with_for_update=True)
    if row is None or row.used_at is not None or anyone_exists(session):
        raise Unauthorized("This setup link has expired: sign in instead.")
    errors = _setup_problems(email, password, workspace_id)
    if errors:
        raise InvalidInput("Check the highlighted fields.", errors)
    if session.get(workspaces.Workspace, workspace_id) is None:
        workspaces.create_workspace(session, workspace_id, workspace_name or None)
    user, _ = create_user(
        session,
        email,
        workspace_id=workspace_id,
        role=Role.ADMIN,
        password=password,
        actor=actor_of(normalize_email(email)),
        password_cost=password_cost,
    )
    row.used_at = utcnow()
    _log(session, workspace_id, SETUP_COMPLETED, actor_of(user.email))
    return user


def _setup_problems(email: str, password: str, workspace_id: str) -> dict:
    errors = {}
    try:
        normalize_email(email)
    except InvalidInput as exc:
        errors.update(exc.errors)
    if problem := passwords.password_problem(password or ""):
        errors["password"] = [problem]
    if not workspaces.valid_workspace_id(workspace_id):
        errors["workspace_id"] = [workspaces.WORKSPACE_ID_RULE]
    return errors


# --- Helpers ------------------------------------------------------------------------------


def _person(user: User, workspace_id: str, role: Role | str) -> Person:
    return Person(
        user_id=user.id,
        email=user.email,
        name=user.name,
        workspace_id=workspace_id,
        role=Role(role),
        epoch=user.session_epoch,
    )


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        choices = ", ".join(Role)
        raise InvalidInput(f"Role must be one of: {choices}.", {"role": [choices]}) from None


def _memberships(session: Session, user_id: uuid.UUID) -> dict[str, Role]:
    rows = session.execute(
        select(Membership.workspace_id, Membership.role)
        .where(Membership.user_id == user_id)
        .order_by(Membership.created_at, Membership.workspace_id)
    )
    return {row.workspace_id: Role(row.role) for row in rows}


def _workspaces_of(session: Session, user_id: uuid.UUID) -> list[str]:
    return list(_memberships(session, user_id))


def _admins(session: Session, workspace_id: str) -> int:
    return session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.workspace_id == workspace_id, Membership.role == Role.ADMIN)
    )


def _log(session: Session, workspace_id: str, type: str, actor: str, **data) -> None:
    activities.record(
        session, workspace_id=workspace_id, config_id=None, type=type, actor=actor, data=data
    )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
