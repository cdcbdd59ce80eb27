"""A request id for every API request: the caller's ``X-Request-ID`` when it is a sane
token, else a new one; echoed in the answer's ``X-Request-ID`` header, put on every log
record of the request (``request_id``, see :mod:`hpe_core.log_format`) and named in a 500's
message, so a client's report, the access log and the error log meet on one id."""

from __future__ import annotations

import logging
import re
import uuid

from flask import Flask, g, has_request_context, request

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._\-]{1,64}")


def current() -> str | None:
    """The id of the request being served, or None outside a request."""
    if not has_request_context():
        return None
    return g.get("request_id")


def _assign() -> None:
    given = request.headers.get(HEADER, "")
    g.request_id = given if _SANE.fullmatch(given) else uuid.uuid4().hex[:12]


def _echo(response):
    request_id = g.get("request_id")
    if request_id:
        response.headers[HEADER] = request_id
    return response


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to each record logged while a request is served."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current()
        return True


def init_app(app: Flask) -> None:
    """Assign and echo request ids; with ``LOG_FORMAT=json``, log JSON lines with them."""
    from hpe_core import log_format

    app.before_request(_assign)
    app.after_request(_echo)
    if log_format.configure(app.config.get("LOG_FORMAT")):
        for handler in logging.getLogger().handlers:
            if getattr(handler, "hpe_json", False) and not any(
                isinstance(f, RequestIdFilter) for f in handler.filters
            ):
                handler.addFilter(RequestIdFilter())
