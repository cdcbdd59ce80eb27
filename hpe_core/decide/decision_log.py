"""The decision log's writes: one row at once, or a batch's rows in one statement.

A single decision is one INSERT on the session's connection, committed by the caller.
A batch (:func:`hpe_core.deliver.touchpoints.decide_and_deliver_all`) opens
:func:`collecting` on its session: every decision the engine logs meanwhile is kept in
memory, and :func:`flush` writes them all before the commit, with one ``COPY`` on
PostgreSQL or one multi-row INSERT (``executemany``) on SQLite. Either way the rows are
in the caller's transaction, so nothing is answered before it is committed, and a batch
that fails leaves nothing behind.

While rows wait in memory, the frequency caps still count them
(:meth:`Pending.count`): the same user twice in one batch is capped as if the decisions
had been made one by one. A batch also reads its users' stored decisions for the caps
once (:func:`prefetch_recent`), instead of one count query per decision.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator

import orjson
from sqlalchemy import JSON, String, any_, bindparam, insert, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from hpe_core.store.models import Decision

TABLE = Decision.__table__
_INSERT = insert(TABLE)
#: Columns holding JSON documents: written as JSON text by COPY (a Python list would be
#: sent as a PostgreSQL array otherwise).
JSON_COLUMNS = frozenset(c.name for c in TABLE.columns if isinstance(c.type, JSON))
_SESSION_KEY = "hpe.pending_decisions"


def json_text(value) -> str:
    """A JSON column's value as JSON text (orjson: several times faster for a batch)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # e.g. an integer beyond 64 bits: the standard library takes it
        return json.dumps(value)


def database_error(statement: str, error: Exception, dialect, invalidated: bool) -> DBAPIError:
    """The SQLAlchemy error for a driver error raised outside SQLAlchemy (IntegrityError,
    OperationalError...), so callers and the API's error handling see one kind."""
    return DBAPIError.instance(
        statement,
        None,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=invalidated,
        dialect=dialect,
    )


class Pending:
    """Decision rows of one batch, not yet written; and, when the configuration has
    frequency caps, the batch's users' stored decisions inside the caps' window, read in
    one query (:func:`prefetch_recent`) instead of one count per decision.

    :ivar rows: the rows, in the order they were logged (the table's column names)
    """

    def __init__(self):
        self.rows: list[dict] = []
        self._times: dict[tuple, list[dt.datetime]] = defaultdict(list)
        self._stored: dict[tuple, list[dt.datetime]] = defaultdict(list)
        self._stored_scope: tuple | None = None  # (config_id, since, users, channels)

    def add(self, row: dict) -> None:
        self.rows.append(row)
        key = (row["config_id"], row["user_id"], row["channel"])
        self._times[key].append(row["created_at"])

    def take(self) -> list[dict]:
        """The pending rows, which are no longer pending (the caller writes them)."""
        rows, self.rows = self.rows, []
        self._times.clear()
        return rows

    def stored_count(
        self, config_id: uuid.UUID, user_id: str, channel: str, since: dt.datetime
    ) -> int | None:
        """How many stored decisions reached the user on the channel at or after
        ``since``, from the prefetched ones; None when they were not prefetched (the
        caller counts in the database)."""
        if self._stored_scope is None:
            return None
        scope_config, scope_since, users, channels = self._stored_scope
        if config_id != scope_config or since < scope_since:
            return None
        if user_id not in users or channel not in channels:
            return None
        return sum(
            1 for created_at in self._stored.get((user_id, channel), ()) if created_at >= since
        )

    def count(self, config_id: uuid.UUID, user_id: str, channel: str, since: dt.datetime) -> int:
        """How many pending decisions of the configuration reached the user on the
        channel at or after ``since`` (what a frequency cap adds to the stored count)."""
        times = self._times.get((config_id, user_id, channel))
        if not times:
            return 0
        return sum(1 for created_at in times if created_at >= since)


def write(session: Session, row: dict) -> None:
    """Log one decision: kept for :func:`flush` inside :func:`collecting`, else one INSERT
    on the session's connection now (the caller commits either way).

    :param row: the decision's columns by name
    """
    pending = session.info.get(_SESSION_KEY)
    if pending is not None:
        pending.add(row)
        return
    # Core insert on the session's connection: one row, no ORM bookkeeping.
    session.connection().execute(_INSERT, row)


def pending_count(
    session: Session, config_id: uuid.UUID, user_id: str, channel: str, since: dt.datetime
) -> int:
    """Decisions for the user on the channel logged in this batch and not yet written
    (0 outside :func:`collecting`): see :meth:`Pending.count`."""
    pending = session.info.get(_SESSION_KEY)
    return 0 if pending is None else pending.count(config_id, user_id, channel, since)


def stored_count(
    session: Session, config_id: uuid.UUID, user_id: str, channel: str, since: dt.datetime
) -> int | None:
    """The batch's prefetched count of stored decisions (see :meth:`Pending.stored_count`),
    or None: count in the database."""
    pending = session.info.get(_SESSION_KEY)
    return None if pending is None else pending.stored_count(config_id, user_id, channel, since)


def prefetch_recent(
    session: Session,
    config_id: uuid.UUID,
    users: Iterable[str],
    channels: Iterable[str],
    since: dt.datetime,
) -> int:
    """Read, in one query, the stored decisions of ``users`` on ``channels`` made at or
    after ``since``, for the frequency caps of the batch being collected (nothing outside
    :func:`collecting`). The window must start no later than any cap's window of any of
    the batch's decisions: counts are then exact.

    :returns: how many stored decisions were read
    """
    pending = session.info.get(_SESSION_KEY)
    if pending is None:
        return 0
    users, channels = frozenset(users), frozenset(channels)
    if not users or not channels:
        return 0
    table = TABLE.c
    if session.get_bind().dialect.name == "postgresql":
        # Array parameters: one short statement whatever the batch's size.
        in_users = table.user_id == any_(bindparam("users", type_=postgresql.ARRAY(String)))
        in_channels = table.channel == any_(bindparam("channels", type_=postgresql.ARRAY(String)))
        params = {"users": sorted(users), "channels": sorted(channels)}
    else:
        in_users, in_channels, params = table.user_id.in_(users), table.channel.in_(channels), {}
    rows = session.connection().execute(
        select(table.user_id, table.channel, table.created_at).where(
            table.config_id == config_id, in_users, in_channels, table.created_at >= since
        ),
        params,
    )
    found = 0
    for user_id, channel, created_at in rows:
        if created_at.tzinfo is None:  # SQLite keeps no offset: the column holds UTC
            created_at = created_at.replace(tzinfo=dt.UTC)
        pending._stored[(user_id, channel)].append(created_at)
        found += 1
    pending._stored_scope = (config_id, since, users, channels)
    return found


@contextlib.contextmanager
def collecting(session: Session) -> Iterator[Pending]:
    """Keep the decisions logged on ``session`` in memory until :func:`flush`.

    Rows still pending when the block ends are dropped (the caller rolls back): flush
    before committing.
    """
    if _SESSION_KEY in session.info:
        raise RuntimeError("Decisions are already being collected on this session.")
    pending = session.info[_SESSION_KEY] = Pending()
    try:
        yield pending
    finally:
        session.info.pop(_SESSION_KEY, None)


def flush(session: Session) -> int:
    """Write the pending decisions in one statement, in the session's transaction: COPY
    on PostgreSQL (one row: a plain INSERT, one round trip instead of COPY's two), a
    multi-row INSERT on SQLite.

    :returns: how many rows were written
    """
    pending = session.info.get(_SESSION_KEY)
    if pending is None or not pending.rows:
        return 0
    rows = pending.take()
    connection = session.connection()
    if connection.dialect.name == "postgresql" and len(rows) > 1:
        _copy(connection, rows)
    else:
        connection.execute(_INSERT, rows)
    return len(rows)


def _copy(connection, rows: list[dict]) -> None:
    """``COPY ... FROM STDIN`` (text format) on the session's own psycopg connection."""
    columns = list(rows[0])
    json_at = [i for i, name in enumerate(columns) if name in JSON_COLUMNS]
    names = ", ".join(f'"{name}"' for name in columns)
    statement = f'COPY "{TABLE.name}" ({names}) FROM STDIN'
    dialect = connection.dialect
    dbapi_connection = connection.connection.dbapi_connection
    try:
        with dbapi_connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                values = [row[name] for name in columns]
                for i in json_at:
                    if values[i] is not None:
                        values[i] = json_text(values[i])
                copy.write_row(values)
    except dialect.loaded_dbapi.Error as exc:
        # A lost connection is dropped from the pool, as SQLAlchemy does.
        gone = dialect.is_disconnect(exc, dbapi_connection, None)
        if gone:
            connection.invalidate(exc)
        raise database_error(statement, exc, dialect, gone) from exc
