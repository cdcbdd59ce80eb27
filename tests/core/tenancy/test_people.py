"""People: accounts, roles, sign-in with throttling, sessions that end, the first-run link."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from hpe_core.errors import Conflict, InvalidInput, NotFound, RateLimited, Unauthorized
from hpe_core.store.models import Activity, User
from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import passwords, people, workspaces

COST = 2**10  # scrypt's floor for tests: the production cost takes ~0.3 s a hash


@pytest.fixture
def db(session):
    workspaces.create_workspace(session, "acme")
    workspaces.create_workspace(session, "globex")
    session.commit()
    return session


def _create(db, email="ann@example.com", role=Role.EDITOR, workspace="acme", password=None):
    user, password = people.create_user(
        db, email, workspace_id=workspace, role=role, password=password, password_cost=COST
    )
    db.commit()
    return user, password


def _sign_in(db, email, password, **kwargs):
    return people.sign_in(db, email, password, password_cost=COST, **kwargs)


def test_passwords_are_salted_memory_hard_hashes():
    """The hash names its scheme and cost, differs per salt, and verifies only the password."""
    first, second = (
        passwords.hash_password("s3cret-pass", cost=COST),
        passwords.hash_password("s3cret-pass", cost=COST),
    )
    assert first.startswith(f"scrypt${COST}$8$1$") and first != second
    assert passwords.verify_password("s3cret-pass", first)
    assert not passwords.verify_password("s3cret-pasS", first)
    assert not passwords.verify_password("s3cret-pass", "md5$whatever")
    assert passwords.needs_rehash(first, cost=COST * 2)
    assert not passwords.needs_rehash(first, cost=COST)


def test_a_created_person_signs_in_with_the_generated_password(db):
    """The generated password works, once; the address is matched whatever its case."""
    user, password = _create(db, "Ann@Example.COM", role=Role.ADMIN)
    assert user.email == "ann@example.com" and len(password) >= 20
    person = _sign_in(db, "ANN@example.com", password)
    assert (person.workspace_id, person.role, person.actor) == (
        "acme",
        Role.ADMIN,
        "user:ann@example.com",
    )
    db.commit()
    types = db.scalars(select(Activity.type).where(Activity.workspace_id == "acme")).all()
    assert people.PERSON_CREATED in types and people.SIGNED_IN in types


def test_wrong_password_and_unknown_address_get_the_same_answer(db):
    """Neither the message nor the error type tells whether an address is registered."""
    _create(db)
    with pytest.raises(Unauthorized) as wrong:
        _sign_in(db, "ann@example.com", "not the password")
    with pytest.raises(Unauthorized) as unknown:
        _sign_in(db, "nobody@example.com", "not the password")
    assert wrong.value.message == unknown.value.message == "Wrong email or password."


def test_failed_sign_ins_lock_the_account_then_it_unlocks(db):
    """Five failures are free; the sixth attempt waits, even with the right password."""
    _user, password = _create(db)
    now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
    for _ in range(people.FREE_ATTEMPTS):
        with pytest.raises(Unauthorized):
            _sign_in(db, "ann@example.com", "wrong", now=now)
        db.commit()
    with pytest.raises(RateLimited) as locked:
        _sign_in(db, "ann@example.com", password, now=now + dt.timedelta(seconds=1))
    assert 0 < locked.value.retry_after <= people.FIRST_LOCK.total_seconds()
    later = now + people.FIRST_LOCK + dt.timedelta(seconds=1)
    assert _sign_in(db, "ann@example.com", password, now=later).email == "ann@example.com"
    db.commit()
    assert db.scalar(select(User.failed_sign_ins)) == 0


def test_locks_grow_and_stay_capped(db):
    """Each failure past the free ones doubles the lock, up to the longest."""
    _create(db)
    now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
    locks = []
    for _ in range(people.FREE_ATTEMPTS + 8):
        with pytest.raises((Unauthorized, RateLimited)):
            _sign_in(db, "ann@example.com", "wrong", now=now)
        db.commit()
        user = db.scalar(select(User))
        db.refresh(user)
        if user.locked_until is not None:
            locks.append(user.locked_until - now)
        now = (user.locked_until or now) + dt.timedelta(seconds=1)
    assert locks[0] == people.FIRST_LOCK and locks[1] == 2 * people.FIRST_LOCK
    assert max(locks) == people.LONGEST_LOCK


def test_disable_and_reset_end_every_session(db):
    """A session resumes only while the account's epoch is the one it began with."""
    user, password = _create(db)
    person = _sign_in(db, "ann@example.com", password)
    assert people.resume(db, user.id, "acme", person.epoch) == person
    new_password = people.reset_password(db, "ann@example.com", password_cost=COST)
    db.commit()
    assert people.resume(db, user.id, "acme", person.epoch) is None
    again = _sign_in(db, "ann@example.com", new_password)
    people.disable_user(db, "ann@example.com")
    db.commit()
    assert people.resume(db, user.id, "acme", again.epoch) is None
    with pytest.raises(Unauthorized):
        _sign_in(db, "ann@example.com", new_password)


def test_roles_are_per_workspace(db):
    """A person can be an admin in one workspace and a viewer in another."""
    user, password = _create(db, role=Role.ADMIN)
    people.create_user(
        db, "ann@example.com", workspace_id="globex", role=Role.VIEWER, password_cost=COST
    )
    db.commit()
    assert people.workspaces_of(db, user.id) == {"acme": Role.ADMIN, "globex": Role.VIEWER}
    person = _sign_in(db, "ann@example.com", password, workspace_id="globex")
    assert person.role is Role.VIEWER and not person.may(Role.EDITOR)
    switched = people.switch_workspace(db, person, "acme")
    assert switched.role is Role.ADMIN and switched.may(Role.EDITOR)
    with pytest.raises(NotFound):
        people.switch_workspace(db, person, "initech")
    with pytest.raises(Conflict):
        people.create_user(db, "ann@example.com", workspace_id="acme", password_cost=COST)


def test_role_order():
    """viewer < editor < admin."""
    assert Role.ADMIN.allows(Role.EDITOR) and Role.EDITOR.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.EDITOR) and not Role.EDITOR.allows(Role.ADMIN)


def test_the_last_admin_keeps_the_role(db):
    """A workspace is never left without an admin."""
    _create(db, role=Role.ADMIN)
    with pytest.raises(Conflict):
        people.set_role(db, "ann@example.com", "acme", Role.VIEWER, actor="cli")
    _create(db, "bob@example.com", role=Role.ADMIN)
    people.set_role(db, "ann@example.com", "acme", Role.VIEWER, actor="cli")


def test_bad_input_is_refused_per_field(db):
    """A bad address, role or short password is an InvalidInput naming the field."""
    with pytest.raises(InvalidInput) as email:
        _create(db, "not-an-address")
    assert "email" in email.value.errors
    with pytest.raises(InvalidInput) as role:
        _create(db, role="boss")
    assert "role" in role.value.errors
    with pytest.raises(InvalidInput) as short:
        _create(db, password="short")
    assert "password" in short.value.errors


def test_the_setup_link_works_once_and_only_while_nobody_exists(db):
    """The first run's link creates the first admin; afterwards it is dead."""
    token = people.issue_setup_token(db)
    db.commit()
    assert people.setup_token_valid(db, token) and not people.setup_token_valid(db, "guess")
    with pytest.raises(InvalidInput) as invalid:
        people.complete_setup(
            db, token, email="x", password="short", workspace_id="Bad Id", password_cost=COST
        )
    assert set(invalid.value.errors) == {"email", "password", "workspace_id"}
    db.rollback()
    user = people.complete_setup(
        db,
        token,
        email="admin@example.com",
        password="a long password",
        workspace_id="newco",
        password_cost=COST,
    )
    db.commit()
    assert people.workspaces_of(db, user.id) == {"newco": Role.ADMIN}
    assert not people.setup_token_valid(db, token)
    assert people.issue_setup_token(db) is None
    with pytest.raises(Unauthorized):
        people.complete_setup(
            db,
            token,
            email="eve@example.com",
            password="a long password",
            workspace_id="evil",
            password_cost=COST,
        )
