"""Alembic migrations: exact table names, up/down/up, and models that match the migrations.

The seed's tables start with a digit (``041_...``) so every statement must quote them; this
runs on a fresh PostgreSQL database of its own (not only SQLite) to prove it.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hpe_core.store import db as hpe_db
from hpe_core.store.models import PREFIX, Base
from tests.conftest import POSTGRES_URL

SEED_TABLES = {PREFIX + "configs", PREFIX + "activities", PREFIX + "metrics"}
#: Columns the ecosystem reads on the seed's tables (DESIGN.md §4 keeps them exact).
SEED_COLUMNS = {
    PREFIX + "configs": {
        "id",
        "workspace_id",
        "name",
        "settings",
        "status",
        "created_at",
        "updated_at",
    },
    PREFIX + "activities": {
        "id",
        "workspace_id",
        "config_id",
        "type",
        "actor",
        "data",
        "created_at",
    },
    PREFIX + "metrics": {
        "id",
        "workspace_id",
        "config_id",
        "date",
        "metrics",
        "created_at",
        "updated_at",
    },
}
JSON_COLUMNS = [
    (PREFIX + "configs", "settings"),
    (PREFIX + "activities", "data"),
    (PREFIX + "metrics", "metrics"),
]
MODEL_TABLES = {table.name for table in Base.metadata.sorted_tables}


@pytest.fixture
def fresh_postgres():
    """An empty PostgreSQL database of this test's own, dropped afterwards."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"hpe_migrations_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = hpe_db.make_engine(POSTGRES_URL.rsplit("/", 1)[0] + "/" + name)
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def fresh_sqlite(tmp_path):
    engine = hpe_db.make_engine(f"sqlite:///{tmp_path / 'migrations.db'}")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_engine(request):
    """An empty database on each backend."""
    return request.getfixturevalue(
        f"fresh_{request.param}" if request.param == "sqlite" else "fresh_postgres"
    )


def _tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


@pytest.mark.postgres
def test_postgres_has_exactly_the_model_tables(fresh_postgres):
    """After upgrade, information_schema lists exactly the models' tables, 041_ names intact."""
    hpe_db.upgrade(fresh_postgres)
    with fresh_postgres.connect() as connection:
        names = set(
            connection.scalars(
                sa.text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                )
            )
        )
    assert names - {"alembic_version"} == MODEL_TABLES
    assert SEED_TABLES <= names
    assert all(name.startswith(PREFIX) for name in names - {"alembic_version"})


@pytest.mark.postgres
def test_postgres_seed_columns_are_exact_and_json_is_jsonb(fresh_postgres):
    """The seed tables keep their columns; their JSON documents are JSONB."""
    hpe_db.upgrade(fresh_postgres)
    with fresh_postgres.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name LIKE '041\\_%'"
            )
        ).all()
    columns: dict[str, set[str]] = {}
    types = {}
    for table, column, data_type in rows:
        columns.setdefault(table, set()).add(column)
        types[table, column] = data_type
    for table, expected in SEED_COLUMNS.items():
        assert columns[table] == expected
    for key in JSON_COLUMNS:
        assert types[key] == "jsonb"


@pytest.mark.postgres
def test_postgres_needs_the_names_quoted(fresh_postgres):
    """Quoted, the 041_ tables work in raw SQL; unquoted, PostgreSQL refuses the name."""
    hpe_db.upgrade(fresh_postgres)
    with fresh_postgres.connect() as connection:
        for table in SEED_TABLES:
            assert connection.scalar(sa.text(f'SELECT count(*) FROM "{table}"')) == 0
    with fresh_postgres.connect() as connection, pytest.raises(sa.exc.ProgrammingError):
        connection.execute(sa.text(f"SELECT count(*) FROM {PREFIX}configs"))


def test_upgrade_downgrade_upgrade(fresh_engine):
    """head -> base empties the database; head again restores every table."""
    assert hpe_db.current_revision(fresh_engine) is None
    hpe_db.upgrade(fresh_engine)
    assert hpe_db.current_revision(fresh_engine) == hpe_db.head_revision()
    assert _tables(fresh_engine) == MODEL_TABLES
    hpe_db.downgrade(fresh_engine, "base")
    assert hpe_db.current_revision(fresh_engine) is None
    assert _tables(fresh_engine) == set()
    hpe_db.upgrade(fresh_engine)
    assert _tables(fresh_engine) == MODEL_TABLES
    assert hpe_db.current_revision(fresh_engine) == hpe_db.head_revision()


def test_upgrade_twice_is_a_no_op(fresh_engine):
    """Upgrading an up-to-date database changes nothing and does not fail."""
    hpe_db.upgrade(fresh_engine)
    hpe_db.upgrade(fresh_engine)
    assert _tables(fresh_engine) == MODEL_TABLES


def test_models_match_the_migrations(fresh_engine):
    """Alembic's autogenerate comparison of the migrated schema to the models finds nothing."""
    hpe_db.upgrade(fresh_engine)
    with fresh_engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_a_row_round_trips_through_the_seed_tables(fresh_engine):
    """The ORM writes and reads the 041_ tables on a freshly migrated database."""
    from hpe_core.store.models import Activity, Config, Workspace

    hpe_db.upgrade(fresh_engine)
    sessions = hpe_db.make_session_factory(fresh_engine)
    with sessions() as session:
        session.add(Workspace(id="acme", name="Acme"))
        session.flush()  # no relationship() between the models: order the inserts by hand
        config = Config(workspace_id="acme", name="c", settings={"a": [1, {"b": None}]})
        session.add(config)
        session.flush()
        session.add(Activity(workspace_id="acme", config_id=config.id, type="t", actor="x"))
        session.commit()
        config_id = config.id
    with sessions() as session:
        stored = session.get(Config, config_id)
        assert stored.settings == {"a": [1, {"b": None}]}
        assert stored.created_at.tzinfo is not None
        assert stored.status == "ACTIVE"


def test_the_comparison_would_see_a_model_change(fresh_sqlite):
    """Sanity check of the method: a column the migrations lack shows up as a difference."""
    hpe_db.upgrade(fresh_sqlite)
    changed = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        copy = table.to_metadata(changed)
        if table.name == PREFIX + "configs":
            copy.append_column(sa.Column("owner", sa.String(64), nullable=True))
    with fresh_sqlite.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), changed)
    assert [d[0] for d in differences] == ["add_column"]
    assert differences[0][3].name == "owner"
