"""Per-endpoint request limits: body size before anything is read, then the rate limits
once the key is known (issue 14, defect 5).

``BODY_LIMITS`` (``web.config.DefaultConfig``) maps an endpoint (``decisions.Decisions``)
or a blueprint (``outcomes``) to its largest body in bytes; others keep
``MAX_CONTENT_LENGTH``. A bigger body is a 413 in the one JSON error shape, refused from
its ``Content-Length`` before it is read (a chunked body stops being read at the limit).
Before, four concurrent 67 MB decision bodies grew one worker to 2 GB.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_smorest import abort


def body_limit(endpoint: str | None, blueprint: str | None) -> int | None:
    """The largest body accepted by ``endpoint`` (None: ``MAX_CONTENT_LENGTH``)."""
    limits = current_app.config.get("BODY_LIMITS") or {}
    for name in (endpoint, blueprint):
        if name and name in limits:
            return limits[name]
    return None


def _check_body() -> None:
    limit = body_limit(request.endpoint, request.blueprint)
    if limit is None:
        return
    request.max_content_length = limit  # a chunked body is cut off when read past it
    length = request.content_length
    if length is not None and length > limit:
        abort(
            413,
            message=f"Request body of {length} bytes: this endpoint takes at most {limit}.",
            errors={"body": [f"At most {limit} bytes."]},
        )


def init_app(app: Flask) -> None:
    """Refuse oversized bodies before any other hook reads them (first ``before_request``)."""
    app.before_request_funcs.setdefault(None, []).insert(0, _check_body)
