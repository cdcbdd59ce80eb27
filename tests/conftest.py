"""Fixtures that mirror the runtime: real SQLite files, a real PostgreSQL database, real Redis.

PostgreSQL (127.0.0.1:5432, user postgres) and Redis (127.0.0.1:6379) are required: when
one does not answer, the tests that need it fail with a message saying how to start it.
Nothing is skipped silently. Override the servers with HPE_TEST_POSTGRES_URL and
HPE_TEST_REDIS_URL.
"""

from __future__ import annotations

import os
import shutil
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.store import db as hpe_db
from hpe_core.store.models import Base
from web.extensions import app_runtime

POSTGRES_URL = os.environ.get(
    "HPE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("HPE_TEST_REDIS_URL", "redis://127.0.0.1:6379")
IN_REPO_PLUGINS = ["email", "web", "ads"]
BASE = "/api/v1/041-hyper-personalization-engine"
#: The apps' secret key (PostgreSQL and Redis refuse to start without one). Tests of the
#: embedded default's generated key pass SECRET_KEY=None.
TEST_SECRET_KEY = "test-secret-key-" + "x" * 32


# --- PostgreSQL ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh, migrated PostgreSQL database for this test session, dropped at the end."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL does not answer at {POSTGRES_URL} ({exc.orig}). Start it: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
            pytrace=False,
        )
    name = f"hpe_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    engine = hpe_db.make_engine(url, pool_size=1, max_overflow=0)
    hpe_db.upgrade(engine)
    _CLEANUP_ENGINES[url] = engine  # kept for the session: empty_database() reuses it
    try:
        yield url
    finally:
        _CLEANUP_ENGINES.pop(url).dispose()
        with admin.connect() as connection:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"
                ),
                {"name": name},
            )
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


#: The session database's own engine, one connection kept open: a new engine per test
#: cost more than emptying the tables.
_CLEANUP_ENGINES: dict[str, sa.Engine] = {}
#: Children before parents, so that no DELETE breaks a foreign key.
_TABLES_CHILDREN_FIRST = tuple(reversed(Base.metadata.sorted_tables))


def empty_database(url: str) -> None:
    """Delete every row of every HPE table of the session database ``url``, in one
    transaction (Alembic's version row stays).

    DELETE on the few rows a test leaves takes about 1.5 ms; TRUNCATE takes about 40 ms
    however empty the tables are (it replaces each table's files), 55 ms with a new engine.
    """
    with _CLEANUP_ENGINES[url].begin() as connection:
        for table in _TABLES_CHILDREN_FIRST:
            connection.execute(table.delete())


_truncate_all = empty_database  # the name tests/worker/conftest.py imports


# --- SQLite ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated SQLite file, copied for each test (migrating once is the slow part)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = hpe_db.make_engine(f"sqlite:///{path}")
    hpe_db.upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def sqlite_url(sqlite_template, tmp_path):
    path = tmp_path / "hpe.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


# --- Apps ------------------------------------------------------------------------------


def make_test_app(database_url: str, tmp_path, **extra):
    from web import create_app

    config = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "AUTO_MIGRATE": False,
        "LOAD_PLUGINS": IN_REPO_PLUGINS,
        "REDIS_URL": None,
        "INLINE_SWEEPER": False,  # tests run jobs explicitly, deterministically
        "KEY_CACHE_SECONDS": 0,  # revocation is immediate in tests (one test covers the cache)
        "SECRET_KEY": TEST_SECRET_KEY,
    }
    config.update(extra)
    # create_app reads the instance folder from HPE_INSTANCE_PATH: set it for this app
    # only, so that no test's folder outlives it in the environment.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HPE_INSTANCE_PATH", str(tmp_path / "instance"))
        return create_app(config)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    """Run the test once per database backend."""
    return request.param


@pytest.fixture
def database_url(request, backend, tmp_path):
    if backend == "sqlite":
        yield request.getfixturevalue("sqlite_url")
        return
    url = request.getfixturevalue("postgres_url")
    yield url
    empty_database(url)


@pytest.fixture
def app(database_url, tmp_path):
    """A fresh app on each backend, with only the in-repo plugins loaded."""
    app = make_test_app(database_url, tmp_path)
    yield app
    app_runtime(app).engine.dispose()


@pytest.fixture
def sqlite_app(sqlite_url, tmp_path):
    """A fresh app on SQLite only, for tests where the backend does not matter."""
    app = make_test_app(sqlite_url, tmp_path)
    yield app
    app_runtime(app).engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def session(app):
    """A database session on the app's engine, closed after the test."""
    session = app_runtime(app).sessions()
    yield session
    session.close()


class Tenant:
    """A workspace with a secret key, ready to call the API."""

    def __init__(self, workspace_id: str, key: str):
        self.id = workspace_id
        self.key = key
        self.headers = {"Authorization": f"Bearer {key}"}


@pytest.fixture
def make_tenant(app):
    """Create workspaces with keys: ``make_tenant("acme")`` -> Tenant."""

    def make(workspace_id: str | None = None, kind: str = "secret") -> Tenant:
        return create_tenant(app, workspace_id, kind)

    return make


def create_tenant(app, workspace_id: str | None = None, kind: str = "secret") -> Tenant:
    """A workspace (created unless it exists) and a new key of ``kind`` on ``app``'s database."""
    from hpe_core.tenancy import workspaces

    workspace_id = workspace_id or f"ws-{uuid.uuid4().hex[:8]}"
    session = app_runtime(app).sessions()
    try:
        if session.get(workspaces.Workspace, workspace_id) is None:
            workspaces.create_workspace(session, workspace_id)
        _row, key = workspaces.create_key(session, workspace_id, kind=kind)
        session.commit()
    finally:
        session.close()
    return Tenant(workspace_id, key)


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("acme")


# --- Redis -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server():
    import redis

    connection = redis.Redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(
            f"Redis does not answer at {REDIS_URL} ({exc}). Start it: redis-server --daemonize "
            'yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
            pytrace=False,
        )
    connection.close()
    return REDIS_URL


@pytest.fixture
def redis_url(redis_server):
    """A Redis database number of our own (claimed with a marker key), flushed around the test."""
    import redis

    marker = f"hpe-test-claim-{uuid.uuid4().hex}"
    for number in range(1, 16):
        url = f"{redis_server}/{number}"
        connection = redis.Redis.from_url(url)
        # The claim is atomic: two test runs on one machine never share a database.
        if connection.dbsize() == 0 and connection.set("hpe-test-claim", marker, nx=True, ex=3600):
            try:
                yield url
            finally:
                connection.flushdb()
                connection.close()
            return
        connection.close()
    pytest.fail("No empty Redis database (1-15) is free for the tests.", pytrace=False)
