"""Engines, sessions and schema migrations (Alembic), for SQLite and PostgreSQL alike."""

from __future__ import annotations

import functools
import logging
import os
import threading
import weakref
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

# Migrations stay at hpe_core/migrations (Alembic's home since 0.1), beside the stages.
MIGRATIONS_DIR = Path(__file__).parents[1] / "migrations"

log = logging.getLogger(__name__)


def make_engine(url: str, **kwargs) -> Engine:
    """Create an engine with the settings HPE relies on for the given backend.

    SQLite gets WAL (readers never block the writer: the API and the inline sweeper share
    one file), enforced foreign keys and a busy timeout instead of instant "locked" errors.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    _forget_after_fork(engine)
    return engine


# --- No connection crosses a fork ---------------------------------------------------------
#
# A forked child (RQ's scheduler, a work horse) inherits the parent's sockets. If the parent
# then dies (SIGKILL, the OOM killer) while a connection is inside a transaction, the
# child's copy of the socket keeps the server session alive: PostgreSQL sees no
# disconnect, and the session stays "idle in transaction" with its locks (a learn run's
# advisory lock) for as long as the child lives. So, in every child, the inherited
# connections are closed on the child's side only (the parent's session is untouched:
# no Terminate message is sent, psycopg never finishes a connection made in another
# process), and the engines start new pools there.

#: Every PostgreSQL connection this process opened that may still be open.
_connections: weakref.WeakSet = weakref.WeakSet()
_engines: weakref.WeakSet = weakref.WeakSet()
_fork_hook = threading.Lock()
_fork_hook_installed = False


def _forget_after_fork(engine: Engine) -> None:
    global _fork_hook_installed
    _engines.add(engine)

    @event.listens_for(engine, "connect")
    def _track(dbapi_connection, _record):
        _connections.add(dbapi_connection)

    with _fork_hook:
        if not _fork_hook_installed and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=forget_inherited_connections)
            _fork_hook_installed = True


def forget_inherited_connections() -> int:
    """In a forked child: close the sockets of the connections inherited from the parent
    (this process's copies only) and give every engine a fresh pool.

    Runs by itself after every ``fork()`` (``os.register_at_fork``) once a PostgreSQL
    engine exists.

    :returns: how many sockets were closed
    """
    closed = 0
    for connection in list(_connections):
        try:
            fd = connection.pgconn.socket
        except Exception:  # noqa: BLE001 - already closed or never connected: nothing to do
            continue
        try:
            os.close(fd)
            closed += 1
        except OSError:
            pass
    _connections.clear()
    for engine in list(_engines):
        # close=False: the old pool's connections belong to the parent; this process must
        # never use them (nor send them a Terminate message).
        engine.dispose(close=False)
    return closed


def dialect_insert(session: Session, table):
    """An INSERT for ``table`` in the session's dialect, so that ``on_conflict_do_nothing``
    and ``on_conflict_do_update`` (PostgreSQL and SQLite spell them alike) are available."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - only the two supported backends
        from sqlalchemy import insert
    return insert(table)


def limit_idle_in_transaction(session: Session, seconds: float) -> None:
    """PostgreSQL: end this session if it sits idle inside the current transaction for
    ``seconds`` (``SET LOCAL idle_in_transaction_session_timeout``: this transaction only),
    so that whatever it holds (an advisory lock) cannot outlive a holder that vanished.
    Nothing on SQLite (no server sessions)."""
    if session.get_bind().dialect.name == "postgresql":
        milliseconds = max(1, int(seconds * 1000))
        session.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = {milliseconds}"))


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: objects returned by services stay readable after commit.
    return sessionmaker(bind=engine, expire_on_commit=False)


def _alembic_config(engine: Engine):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (default: the newest)."""
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database down to ``revision``."""
    from alembic import command

    command.downgrade(_alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@functools.cache
def head_revision() -> str:
    """The newest revision shipped with this version of HPE.

    Cached: the migrations folder does not change while a process runs, and reading it
    costs ~7 ms on every app build (each test builds one).
    """
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
