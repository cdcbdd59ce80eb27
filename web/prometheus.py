"""``GET /metrics``: HPE's operator metrics in Prometheus' text format, and the decision
latency histogram observed around the decision endpoints.

What is counted and how the processes share it: ``plugins/operator_metrics.py``. The
endpoint is for operators, not API clients: with ``METRICS_TOKEN`` set it wants
``Authorization: Bearer <token>``; without it, only clients on this machine (loopback)
may scrape (docs/operations.md, "Metrics").
"""

from __future__ import annotations

import hmac
import ipaddress
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from flask_smorest import abort

from plugins import operator_metrics
from web.extensions import app_runtime

bp = Blueprint("prometheus", __name__)

#: Endpoints whose whole request time is the decision latency, and their label.
TIMED_ENDPOINTS = {
    "decisions.Decisions": "decisions",
    "connected_content.ConnectedContent": "connected",
}


@bp.get("/metrics")
def scrape():
    """Every process's counters, then the state read now (database, queues)."""
    _authorize()
    body, content_type = operator_metrics.exposition(app_runtime())
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})


def _authorize() -> None:
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), str(token).encode()
        ):
            abort(401, message="Send the metrics token: Authorization: Bearer <HPE_METRICS_TOKEN>.")
        return
    if not _loopback(request.remote_addr):
        abort(
            403,
            message="Metrics are served to this machine only: set HPE_METRICS_TOKEN to scrape "
            "from elsewhere.",
        )


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _start() -> None:
    if request.endpoint in TIMED_ENDPOINTS:
        g.hpe_started = time.perf_counter()


def _observe(response):
    started = g.pop("hpe_started", None)
    if started is not None:
        operator_metrics.metrics().decision_seconds.labels(
            TIMED_ENDPOINTS[request.endpoint]
        ).observe(time.perf_counter() - started)
    return response


def init_app(app: Flask) -> None:
    """Mount ``/metrics`` and time the decision endpoints."""
    app.register_blueprint(bp)
    app.before_request(_start)
    app.after_request(_observe)
