"""One error shape everywhere: ``{"code", "status", "message", "errors"}``.

Domain errors (``hpe_core.errors``) are translated here and nowhere else.
"""

from __future__ import annotations

import logging
import math
import uuid

from flask import Flask, current_app, jsonify, make_response, request
from markupsafe import escape
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from hpe_core.errors import (
    Conflict,
    Forbidden,
    HpeError,
    InvalidInput,
    NotFound,
    RateLimited,
    TooLarge,
    TransientError,
    Unauthorized,
)
from web import outages, request_ids
from web.extensions import app_runtime

log = logging.getLogger(__name__)
DASHBOARD_PREFIX = "/dashboard/"

STATUS_BY_ERROR: dict[type[HpeError], int] = {
    InvalidInput: 422,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    RateLimited: 429,
    TooLarge: 413,
    TransientError: 503,
}


def error_body(code: int, message: str, errors: dict | None = None) -> dict:
    return {
        "code": code,
        "status": HTTP_STATUS_CODES.get(code, "Error"),
        "message": message,
        "errors": errors or {},
    }


def _unwrap_locations(errors: dict) -> dict:
    # webargs files errors under their location ("json", "query"); clients want fields.
    if len(errors) == 1 and next(iter(errors)) in ("json", "query", "view_args", "headers"):
        return next(iter(errors.values()))
    return errors


_DEFAULT_MESSAGES = {
    404: "Not found. Check the path; object ids are UUIDs.",
    405: "Method not allowed on this path.",
    413: "Request body too large.",
    422: "Invalid input; see errors for each field.",
}


def _for_a_person() -> bool:
    """True for the dashboard's pages: people get an HTML page, machines the JSON shape."""
    return request.path == "/" or request.path.startswith(DASHBOARD_PREFIX)


def _page(code: int, message: str, headers: dict | None = None):
    from web.dashboard.errors import error_page

    try:
        return error_page(code, message, headers or {})
    except Exception as error:
        if not outages.is_database_outage(error):
            raise
        # The dashboard's layout reads the signed-in person from the database: while it
        # is down, the page is this plain one.
        return _plain_page(code, message, headers or {})


def _plain_page(code: int, message: str, headers: dict):
    title = HTTP_STATUS_CODES.get(code, "Error")
    body = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title></head><body><main><h1>{escape(title)}</h1><p>{escape(message)}</p>"
        "</main></body></html>"
    )
    response = make_response(body, code)
    response.mimetype = "text/html"
    response.headers.update(headers)
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def handle_http_exception(error: HTTPException):
    if _for_a_person():
        return _page(error.code or 500, error.description or error.name)
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages") or {}
    # webargs files a body it cannot parse as {"json": ["Invalid JSON body."]}: once the
    # location is unwrapped that is a bare list, and the shape promises an object.
    errors = _unwrap_locations(errors) if isinstance(errors, dict) else errors
    if isinstance(errors, list):
        errors = {"body": errors}
    message = data.get("message")
    if message is None:
        message = _DEFAULT_MESSAGES.get(error.code) or error.description or error.name
        if error.code == 400 and errors.get("body"):
            message = "Malformed JSON in the request body."
        elif set(errors) == {"_schema"}:
            message = "The request body must be a JSON object."
    response = jsonify(error_body(error.code, message, errors))
    response.status_code = error.code
    for name, value in (data.get("headers") or {}).items():
        response.headers[name] = value
    if error.code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="hpe"'
    if error.code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def handle_domain_error(error: HpeError):
    code = next(
        (status for kind, status in STATUS_BY_ERROR.items() if isinstance(error, kind)), 400
    )
    if _for_a_person():
        return _page(code, error.message)
    response = jsonify(error_body(code, error.message, error.errors))
    response.status_code = code
    if code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="hpe"'
    retry_after = getattr(error, "retry_after", None)
    if retry_after:
        # Whole seconds, rounded up: "0" would invite an immediate retry.
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response


def handle_database_outage(error: Exception):
    """503 with ``Retry-After`` while the database cannot be reached: logged once per
    outage (:class:`web.outages.OutageLog`), not a traceback per request."""
    if outages.outage_log(current_app).failed(error):
        # Every pooled connection is suspect now (a restarted server dropped them all):
        # drop them, so that requests after the outage never meet a dead one.
        app_runtime().engine.dispose()
    headers = {"Retry-After": str(outages.RETRY_AFTER_SECONDS)}
    if _for_a_person():
        return _page(503, outages.OUTAGE_MESSAGE, headers)
    response = jsonify(error_body(503, outages.OUTAGE_MESSAGE))
    response.status_code = 503
    response.headers.update(headers)
    return response


def loggable(text: str) -> str:
    """``text`` on one line: control characters (a newline in a request path...) escaped,
    so a client cannot write lines of its own into the log."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def handle_unexpected(error: Exception):
    if outages.is_database_outage(error):
        return handle_database_outage(error)
    # Logged once with an id the caller can quote; no traceback text leaves the server.
    request_id = request_ids.current() or uuid.uuid4().hex[:12]
    log.exception(
        "unhandled error %s on %s %s",
        request_id,
        loggable(request.method),
        loggable(request.path),
    )
    if _for_a_person():
        return _page(500, f"Something went wrong on our side (request id {request_id}).")
    body = error_body(500, f"Internal error (request id {request_id}).")
    response = jsonify(body)
    response.status_code = 500
    return response


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(HpeError, handle_domain_error)
    app.register_error_handler(InternalServerError, handle_unexpected)
    app.register_error_handler(Exception, handle_unexpected)
    outages.init_app(app, app_runtime(app).engine)
