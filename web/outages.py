"""A database outage answers 503 with ``Retry-After`` in the one JSON error shape, logged
once per outage; and no error a server generates ever leaves as HTML or a traceback.

Three places can produce an error that is not the app's JSON:

- a view or a hook (authentication reads API keys) finds the database unreachable:
  :func:`is_database_outage` errors become a 503 here instead of a 500 with a traceback
  per request;
- the request's teardown (closing a session on a dead connection) raises after the
  response was built: Flask then lets the error out to gunicorn, which answers with its
  HTML page. :func:`wrap_wsgi` is the last resort that answers JSON instead;
- gunicorn itself refuses a request before HPE sees it (a request line over 4094 bytes:
  414; oversized headers: 431; a malformed request: 400): :func:`json_gunicorn_errors`
  makes those JSON too.

The dashboard's pages keep their HTML error page for people (``web.errors._for_a_person``).
"""

from __future__ import annotations

import json
import logging
import threading
import time

from flask import Flask
from sqlalchemy import event, exc
from werkzeug.http import HTTP_STATUS_CODES

log = logging.getLogger(__name__)

#: What a 503 asks a client to wait before retrying, in seconds: PostgreSQL restarts in a
#: few seconds, and a failover takes about as long.
RETRY_AFTER_SECONDS = 2
OUTAGE_MESSAGE = "The database is unavailable; retry after a moment."


def is_database_outage(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be reached (or its connections are
    exhausted) right now, rather than a bad query: retrying later may succeed."""
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(
        error,
        (exc.OperationalError, exc.InterfaceError, exc.DisconnectionError, exc.TimeoutError),
    ):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg ships with HPE
        return False
    return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))


class OutageLog:
    """Logs an outage once when it starts and once when it ends (the first connection
    made again), counting the requests answered 503 in between, instead of a traceback
    per request."""

    def __init__(self):
        self._lock = threading.Lock()
        self._since: float | None = None
        self._answered = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, error: BaseException) -> bool:
        """Count one request answered 503; log the outage if it starts here.

        :returns: True when this error started the outage
        """
        with self._lock:
            self._answered += 1
            if self._since is not None:
                return False
            self._since = time.monotonic()
        first_line = str(getattr(error, "orig", None) or error).strip().splitlines()
        log.error(
            "database unavailable, answering 503 until it is back: %s: %s",
            type(getattr(error, "orig", None) or error).__name__,
            first_line[0] if first_line else "",
        )
        return True

    def connected(self) -> None:
        with self._lock:
            if self._since is None:
                return
            lasted, answered = time.monotonic() - self._since, self._answered
            self._since, self._answered = None, 0
        log.warning(
            "database reachable again after %.1f s; %d requests were answered 503",
            lasted,
            answered,
        )


def outage_log(app: Flask) -> OutageLog:
    return app.extensions["hpe_outage_log"]


def init_app(app: Flask, engine) -> None:
    """Track outages of ``engine`` (the end is the first new connection that works) and
    answer JSON whatever escapes Flask."""
    outages = app.extensions["hpe_outage_log"] = OutageLog()

    @event.listens_for(engine, "connect")
    def _reconnected(_dbapi_connection, _record):
        outages.connected()

    app.wsgi_app = wrap_wsgi(app.wsgi_app)


def error_json(code: int, message: str) -> bytes:
    return json.dumps(
        {
            "code": code,
            "status": HTTP_STATUS_CODES.get(code, "Error"),
            "message": message,
            "errors": {},
        }
    ).encode()


def wrap_wsgi(wsgi_app):
    """The last resort: an error that escapes Flask (a failing teardown) answers JSON.

    Flask has called ``start_response`` by the time a teardown fails, and a second call
    would add to the first one's headers in gunicorn: so the app's call is held back
    until the app returned, then made once, with its answer or with this JSON error.
    """

    def app(environ, start_response):
        started: list = []
        written: list[bytes] = []

        def hold(status, headers, exc_info=None):
            if exc_info and started:  # an app replacing its own answer, as WSGI allows
                started.clear()
            started.append((status, headers))
            return written.append

        try:
            body = wsgi_app(environ, hold)
        except Exception as error:  # noqa: BLE001 - answered, not re-raised to gunicorn
            if is_database_outage(error):
                code, message = 503, OUTAGE_MESSAGE
                headers = [("Retry-After", str(RETRY_AFTER_SECONDS))]
            else:
                log.exception("error outside the request handlers")
                code, message, headers = 500, "Internal error.", []
            content = error_json(code, message)
            start_response(
                f"{code} {HTTP_STATUS_CODES.get(code, 'Error')}",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(content))),
                    *headers,
                ],
            )
            return [content]
        status, headers = started[-1]
        start_response(status, headers)
        if written:
            return _prefixed(written, body)
        return body

    return app


def _prefixed(written: list[bytes], body):
    """``written`` (through the legacy ``write`` callable), then ``body``."""
    try:
        yield from written
        yield from body
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def json_gunicorn_errors() -> None:
    """Make gunicorn's own error answers (414, 431, 400 before HPE sees the request) the
    one JSON shape instead of its HTML page. Call it in ``hpe serve`` before gunicorn
    forks its workers."""
    from gunicorn import util

    def write_error(sock, status_int, reason, mesg):
        body = json.dumps(
            {
                "code": status_int,
                "status": reason,
                "message": mesg or reason,
                "errors": {},
            }
        ).encode()
        head = (
            f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        util.write_nonblock(sock, head.encode("latin1") + body)

    util.write_error = write_error
