"""Group commit of single decisions on PostgreSQL: a process's concurrent decisions share one
INSERT and one commit, and each is answered only once its row is committed.

Every single decision used to cost its request four round trips to PostgreSQL besides
the work (the pool's ping at checkout, BEGIN, INSERT, COMMIT) and a WAL flush of its own.
Here the request hands its row to the process's :class:`GroupWriter` and waits. The
first request to arrive while nobody is writing becomes the leader: it writes every row
waiting at that moment with one multi-row ``INSERT`` in autocommit mode (one round
trip, one WAL flush, a statement PostgreSQL prepares once per group size), on a
connection the writer keeps (no ping per request), then wakes the rows' requests and
hands the leadership to the next waiting one, if any. Requests that arrive while a
group is being written form the next group. A lone request is written at once by
itself: nothing waits for a timer.

Nothing answered is lost: :meth:`GroupWriter.write` returns only after PostgreSQL
committed the row, and raises (the request answers an error, the caller's "503") when the
write failed. A failing group is retried row by row, so one bad row never fails another
request's decision.
"""

from __future__ import annotations

import functools
import os
import threading

from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError

from hpe_core.decide import decision_log

_TABLE = decision_log.TABLE


@functools.lru_cache(maxsize=256)
def insert_statement(columns: tuple[str, ...], rows: int) -> str:
    """``INSERT INTO decisions (columns) VALUES (...), (...)`` for ``rows`` rows, JSON
    columns as JSON text cast to their type. One text per group size, so PostgreSQL
    prepares each size once; scalar parameters (array parameters cost more to send)."""
    names = ", ".join(f'"{name}"' for name in columns)
    one = ", ".join(
        "CAST(%s AS JSONB)" if name in decision_log.JSON_COLUMNS else "%s" for name in columns
    )
    values = ", ".join([f"({one})"] * rows)
    return f'INSERT INTO "{_TABLE.name}" ({names}) VALUES {values}'


class _Entry:
    __slots__ = ("rows", "done", "lead", "error")

    def __init__(self, rows: list[dict]):
        self.rows = rows
        self.done = threading.Event()
        self.lead = False
        self.error: BaseException | None = None


class GroupWriter:
    """Writes the decision rows of one process's concurrent requests in shared commits.

    :param engine: a PostgreSQL engine; the writer checks one connection out of its pool
        and keeps it (in autocommit mode) until an error drops it
    """

    def __init__(self, engine: Engine):
        self._engine = engine
        self._lock = threading.Lock()
        self._waiting: list[_Entry] = []
        self._writing = False
        self._connection = None  # the pool's connection record, kept checked out
        self._cursor = None
        #: Groups written and rows in them (for the benchmarks and tests).
        self.groups = 0
        self.rows = 0

    def write(self, rows: list[dict]) -> None:
        """Commit ``rows`` (decision columns by name), sharing the commit with whatever
        other threads of this process are writing now.

        :raises DBAPIError: the rows could not be written (nothing of them is stored)
        """
        entry = _Entry(rows)
        with self._lock:
            self._waiting.append(entry)
            lead = not self._writing
            self._writing = True
        if not lead:
            entry.done.wait()
            if not entry.lead:
                if entry.error is not None:
                    raise entry.error
                return
        self._lead(entry)
        if entry.error is not None:
            raise entry.error

    def _lead(self, own: _Entry) -> None:
        with self._lock:
            group, self._waiting = self._waiting, []
        try:
            self._write_group(group)
        finally:
            for entry in group:
                if entry is not own:
                    entry.done.set()
            with self._lock:
                if self._waiting:  # the next group's first request leads it
                    successor = self._waiting[0]
                    successor.lead = True
                    successor.done.set()
                else:
                    self._writing = False

    def _write_group(self, group: list[_Entry]) -> None:
        rows = [row for entry in group for row in entry.rows]
        try:
            self._insert(rows)
            self.groups += 1
            self.rows += len(rows)
            return
        except DBAPIError as exc:
            if len(group) == 1 or exc.connection_invalidated:
                for entry in group:
                    entry.error = exc
                return
        # One row made the whole statement fail (a duplicate id...): each request's rows
        # alone, so that only the bad one fails.
        for entry in group:
            try:
                self._insert(entry.rows)
            except DBAPIError as exc:
                entry.error = exc

    def _insert(self, rows: list[dict]) -> None:
        columns = tuple(rows[0])
        statement = insert_statement(columns, len(rows))
        json_columns = decision_log.JSON_COLUMNS
        json_text = decision_log.json_text
        params = []
        for row in rows:
            for name in columns:
                value = row[name]
                if value is not None and name in json_columns:
                    value = json_text(value)
                params.append(value)
        connection = self._checked_out()
        dbapi_connection = connection.driver_connection
        try:
            self._cursor.execute(statement, params)
        except self._engine.dialect.loaded_dbapi.Error as exc:
            gone = self._engine.dialect.is_disconnect(exc, dbapi_connection, None)
            if gone:
                self._drop()
            raise decision_log.database_error(statement, exc, self._engine.dialect, gone) from exc

    def _checked_out(self):
        if self._connection is None:
            connection = self._engine.raw_connection()  # the pool pings it once, here
            try:
                connection.driver_connection.autocommit = True
                self._cursor = connection.driver_connection.cursor()  # reused: one per write
            except BaseException:
                connection.invalidate()
                raise
            self._connection = connection
        return self._connection

    def close(self) -> None:
        """Give the kept connection back to its pool (closed: it is in autocommit mode)."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        connection, self._connection, self._cursor = self._connection, None, None
        if connection is not None:
            connection.invalidate()


# --- one writer per engine and process ------------------------------------------------------

_writers: dict[Engine, GroupWriter] = {}
_writers_lock = threading.Lock()


def writer_for(engine: Engine) -> GroupWriter | None:
    """This process's writer for ``engine``, or None where group commit does not apply
    (SQLite: one writer at a time anyway, and no server round trips to save). Disposing
    the engine closes its writer's connection."""
    if engine.dialect.name != "postgresql":
        return None
    writer = _writers.get(engine)
    if writer is None:
        with _writers_lock:
            writer = _writers.get(engine)
            if writer is None:
                writer = _writers[engine] = GroupWriter(engine)
                event.listen(engine, "engine_disposed", _on_disposed)
    return writer


def _on_disposed(engine: Engine) -> None:
    with _writers_lock:
        writer = _writers.pop(engine, None)
    if writer is not None:
        writer.close()


def _forget_writers() -> None:
    # A forked child must not use its parent's connection (nor its lock's state).
    _writers.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_writers)
