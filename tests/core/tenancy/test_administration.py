"""A workspace admin's power over people and keys: bounded to the workspace, logged."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hpe_core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from hpe_core.store.models import Activity, ApiKey
from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import administration, people, workspaces

COST = 2**10
PASSWORD = "correct horse battery"


@pytest.fixture
def db(session):
    for workspace_id in ("acme", "globex"):
        workspaces.create_workspace(session, workspace_id)
    session.commit()
    return session


def _join(db, email, workspace="acme", role=Role.EDITOR):
    people.create_user(
        db, email, workspace_id=workspace, role=role, password=PASSWORD, password_cost=COST
    )
    db.commit()


@pytest.fixture
def admin(db):
    """Ann, admin of acme, acting in acme."""
    _join(db, "ann@example.com", role=Role.ADMIN)
    return people.sign_in(db, "ann@example.com", PASSWORD, password_cost=COST)


def _activities(db, type):
    return [
        (row.actor, row.data) for row in db.scalars(select(Activity).where(Activity.type == type))
    ]


def test_adding_a_new_person_gives_a_password_once_and_logs_the_admin(db, admin):
    """A new account gets a generated password that signs in; the admin is the actor."""
    added = administration.add_person(
        db, admin, "Bob@Example.com", role=Role.VIEWER, name=" Bob ", password_cost=COST
    )
    db.commit()
    assert (added.email, added.role) == ("bob@example.com", Role.VIEWER) and added.password
    bob = people.sign_in(db, "bob@example.com", added.password, password_cost=COST)
    assert (bob.role, bob.name) == (Role.VIEWER, "Bob")
    assert (
        "user:ann@example.com",
        {"email": "bob@example.com", "role": "viewer"},
    ) in _activities(db, people.PERSON_CREATED)


def test_adding_someone_with_an_account_keeps_their_password(db, admin):
    """A person of another workspace joins with their own password (none is shown)."""
    _join(db, "gil@example.com", workspace="globex")
    added = administration.add_person(db, admin, "gil@example.com", role=Role.EDITOR)
    db.commit()
    assert added.password is None
    assert people.sign_in(db, "gil@example.com", PASSWORD, workspace_id="acme", password_cost=COST)


def test_adding_is_refused_per_field(db, admin):
    """A bad address or name is an InvalidInput on its field; a member twice is a Conflict."""
    with pytest.raises(InvalidInput) as bad:
        administration.add_person(db, admin, "not an address", role=Role.EDITOR)
    assert set(bad.value.errors) == {"email"}
    with pytest.raises(InvalidInput) as long_name:
        administration.add_person(db, admin, "x@example.com", role=Role.EDITOR, name="n" * 201)
    assert set(long_name.value.errors) == {"name"}
    with pytest.raises(InvalidInput) as role:
        administration.add_person(db, admin, "x@example.com", role="owner")
    assert set(role.value.errors) == {"role"}
    with pytest.raises(Conflict):
        administration.add_person(db, admin, "ann@example.com", role=Role.EDITOR)


def test_members_are_the_workspaces_and_say_who_the_admin_may_manage(db, admin):
    """The list holds this workspace's people only; someone who also belongs to a
    workspace the admin does not administer is not manageable."""
    _join(db, "bob@example.com")
    _join(db, "gil@example.com", workspace="globex")
    _join(db, "gil@example.com", workspace="acme", role=Role.VIEWER)
    _join(db, "zed@example.com", workspace="globex")
    found = {m.user.email: (m.role, m.manageable) for m in administration.members(db, admin)}
    assert found == {
        "ann@example.com": (Role.ADMIN, True),
        "bob@example.com": (Role.EDITOR, True),
        "gil@example.com": (Role.VIEWER, False),
    }


def test_disable_and_reset_reach_only_people_wholly_within_the_admins_workspaces(db, admin):
    """An admin may not disable, nor take over by a new password, someone who also
    belongs to a workspace they do not administer; once they administer it too, they may."""
    _join(db, "gil@example.com")
    _join(db, "gil@example.com", workspace="globex", role=Role.ADMIN)
    with pytest.raises(Forbidden):
        administration.reset_password(db, admin, "gil@example.com", password_cost=COST)
    with pytest.raises(Forbidden):
        administration.disable_person(db, admin, "gil@example.com")
    people.create_user(db, "ann@example.com", workspace_id="globex", role=Role.ADMIN)
    db.commit()
    password = administration.reset_password(db, admin, "gil@example.com", password_cost=COST)
    db.commit()
    assert people.sign_in(db, "gil@example.com", password, password_cost=COST)
    administration.disable_person(db, admin, "gil@example.com")
    db.commit()
    with pytest.raises(Unauthorized):
        people.sign_in(db, "gil@example.com", password, password_cost=COST)
    assert {actor for actor, _ in _activities(db, people.PERSON_DISABLED)} == {
        "user:ann@example.com"
    }


def test_an_admin_cannot_disable_or_reset_themselves(db, admin):
    """Locking yourself out (or resetting your own session away) is refused."""
    with pytest.raises(Conflict):
        administration.disable_person(db, admin, "ann@example.com")
    with pytest.raises(Conflict):
        administration.reset_password(db, admin, "ann@example.com", password_cost=COST)


def test_people_of_other_workspaces_are_not_found(db, admin):
    """Someone outside the admin's workspace (or nobody at all) is NotFound, whatever the
    action."""
    _join(db, "zed@example.com", workspace="globex")
    for email in ("zed@example.com", "nobody@example.com", "not an address"):
        with pytest.raises(NotFound):
            administration.change_role(db, admin, email, Role.ADMIN)
        with pytest.raises(NotFound):
            administration.disable_person(db, admin, email)
        with pytest.raises(NotFound):
            administration.reset_password(db, admin, email, password_cost=COST)


def test_roles_change_but_the_last_admin_stays(db, admin):
    """A role changes in this workspace only; the workspace keeps one admin."""
    _join(db, "bob@example.com")
    administration.change_role(db, admin, "bob@example.com", Role.ADMIN)
    db.commit()
    assert people.workspaces_of(db, people.get_user(db, "bob@example.com").id) == {
        "acme": Role.ADMIN
    }
    administration.change_role(db, admin, "bob@example.com", Role.VIEWER)
    with pytest.raises(Conflict):
        administration.change_role(db, admin, "ann@example.com", Role.EDITOR)


def test_keys_are_made_and_revoked_in_the_admins_workspace_only(db, admin):
    """A key is the admin's workspace's; another workspace's prefix is NotFound; a
    revocation is logged once; secrets never reach the log."""
    row, key = administration.create_key(db, admin, name=" braze ", kind="publishable")
    db.commit()
    assert (row.workspace_id, row.kind, row.name) == ("acme", "publishable", "braze")
    assert workspaces.authenticate(db, key).workspace_id == "acme"
    _other, other_key = workspaces.create_key(db, "globex")
    db.commit()
    with pytest.raises(NotFound):
        administration.revoke_key(db, admin, other_key[:15])
    administration.revoke_key(db, admin, row.prefix)
    administration.revoke_key(db, admin, row.prefix)
    db.commit()
    with pytest.raises(Unauthorized):
        workspaces.authenticate(db, key)
    assert workspaces.authenticate(db, other_key).workspace_id == "globex"
    logged = _activities(db, administration.KEY_CREATED) + _activities(
        db, administration.KEY_REVOKED
    )
    assert logged == [
        ("user:ann@example.com", {"prefix": row.prefix, "kind": "publishable", "name": "braze"}),
        ("user:ann@example.com", {"prefix": row.prefix, "kind": "publishable", "name": "braze"}),
    ]
    assert key not in str(db.scalars(select(Activity.data)).all())


def test_a_key_with_an_unknown_kind_or_a_long_name_is_refused(db, admin):
    """Kind and name are checked per field; nothing is stored."""
    with pytest.raises(InvalidInput) as refused:
        administration.create_key(db, admin, name="n" * 201, kind="root")
    assert set(refused.value.errors) == {"kind", "name"}
    assert db.scalars(select(ApiKey)).all() == []
