"""Personalizer's error shape on the compat routes, so its SDKs raise their usual errors.

``{"error": {"code": "InvalidRankRequest", "message": "...", "target": "actions",
"details": [{"code", "message", "target"}]}}``: Azure's client library reads ``code`` and
``message`` into ``HttpResponseError.error`` (``ResourceNotFoundError`` for a 404,
``ClientAuthenticationError`` for a 401, ``ResourceExistsError`` for a 409).

HPE's domain errors map as the rest of the API maps them, except that invalid input is a
400 here, as Personalizer answers it, rather than HPE's 422.
"""

from __future__ import annotations

import logging
import math
import uuid

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

from hpe_core.compat.errors import NotSupported, code_of, flat_messages
from hpe_core.errors import (
    Conflict,
    Forbidden,
    HpeError,
    InvalidInput,
    NotFound,
    RateLimited,
    TransientError,
    Unauthorized,
)
from web import outages
from web.errors import loggable

log = logging.getLogger(__name__)

#: Domain error -> (HTTP status, Personalizer code when the service attached none).
_BY_ERROR: dict[type[HpeError], tuple[int, str]] = {
    InvalidInput: (400, "BadRequest"),
    Unauthorized: (401, "Unauthorized"),
    Forbidden: (403, "InvalidApiAccess"),
    NotFound: (404, "ResourceNotFound"),
    Conflict: (409, "OperationNotAllowed"),
    RateLimited: (429, "TooManyRequests"),
    NotSupported: (501, "OperationNotAllowed"),
    TransientError: (503, "ServiceUnavailable"),
}
_BY_STATUS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "InvalidApiAccess",
    404: "ResourceNotFound",
    405: "BadRequest",
    409: "OperationNotAllowed",
    413: "PayloadSizeExceeded",
    415: "BadRequest",
    429: "TooManyRequests",
}
#: The route's own code for invalid input (``InvalidRankRequest``...), set by each view.
ROUTE_CODE = "personalizer_invalid_code"


def error_response(status: int, code: str, message: str, target: str | None = None, details=()):
    """A Personalizer error answer."""
    error: dict = {"code": code, "message": message}
    if target:
        error["target"] = target
    if details:
        error["details"] = list(details)
    response = jsonify({"error": error})
    response.status_code = status
    return response


def handle_domain_error(error: HpeError):
    status, default = next(
        (found for kind, found in _BY_ERROR.items() if isinstance(error, kind)),
        (400, "BadRequest"),
    )
    if isinstance(error, InvalidInput):
        default = g.get(ROUTE_CODE, default)
    code = code_of(error) or default
    messages = flat_messages(error.errors)
    target = messages[0][0] if messages else None
    details = [
        {"code": code, "message": message, **({"target": path} if path else {})}
        for path, message in messages[:20]
        if message != error.message
    ]
    response = error_response(status, code, error.message, target, details)
    retry_after = getattr(error, "retry_after", None)
    if retry_after:
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response


def handle_http_exception(error: HTTPException):
    status = error.code or 500
    code = _BY_STATUS.get(status, "BadRequest" if status < 500 else "InternalServerError")
    response = error_response(status, code, error.description or error.name)
    if status == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def handle_unexpected(error: Exception):
    if outages.is_database_outage(error):
        # As on the rest of the API: 503 with Retry-After, logged once per outage.
        outages.outage_log(current_app).failed(error)
        response = error_response(503, "ServiceUnavailable", outages.OUTAGE_MESSAGE)
        response.headers["Retry-After"] = str(outages.RETRY_AFTER_SECONDS)
        return response
    # Logged once with an id the caller can quote; no traceback text leaves the server.
    request_id = uuid.uuid4().hex[:12]
    log.exception(  # escaped: a newline in the path must not start a line of its own
        "unhandled error %s on %s %s", request_id, loggable(request.method), loggable(request.path)
    )
    return error_response(500, "InternalServerError", f"Internal error (request id {request_id}).")


def register(blueprint: Blueprint) -> None:
    """Answer every error of ``blueprint``'s routes in Personalizer's shape."""
    blueprint.register_error_handler(HpeError, handle_domain_error)
    blueprint.register_error_handler(HTTPException, handle_http_exception)
    # Also by its code: the app's own 500 handler is registered for InternalServerError.
    blueprint.register_error_handler(InternalServerError, handle_unexpected)
    blueprint.register_error_handler(Exception, handle_unexpected)
