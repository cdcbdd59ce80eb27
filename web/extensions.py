"""Per-app resources: the process's runtime (:mod:`hpe_core.runtime`), bound in
``create_app`` — never at import.

They live in ``app.extensions`` rather than module globals so that several apps (tests)
can coexist in one process. ``app.extensions["hpe_runtime"]`` is the runtime; the other
``hpe_*`` keys name its parts for the views that read one of them.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from hpe_core.deliver.touchpoints import TouchpointParts
from hpe_core.runtime import Runtime


def bind_runtime(app: Flask, runtime: Runtime) -> None:
    """Give the app its runtime, and the request session a teardown."""
    app.extensions["hpe_runtime"] = runtime
    app.extensions.update(
        hpe_engine=runtime.engine,
        hpe_sessions=runtime.sessions,
        hpe_pm=runtime.pm,
        hpe_channels=runtime.channels,
        hpe_catalog=runtime.catalog,
        hpe_measurement=runtime.measurement,
        hpe_decisions=runtime.decisions,
        hpe_jobs=runtime.jobs,
    )
    # Built once, not per decision request. The backend is looked up when a delivery is
    # enqueued, so a test (or an operator's hook) that swaps hpe_jobs is honoured.
    app.extensions["hpe_touchpoints"] = TouchpointParts(
        engine=runtime.decisions,
        pm=runtime.pm,
        channels=runtime.channels,
        enqueue_delivery=lambda delivery_id: app.extensions["hpe_jobs"].enqueue_delivery(
            delivery_id, runtime=runtime
        ),
    )
    app.teardown_appcontext(_close_session)


def db_session() -> Session:
    """The request's session: one per app context, closed (rolled back if open) at teardown."""
    if "hpe_session" not in g:
        g.hpe_session = current_app.extensions["hpe_sessions"]()
    return g.hpe_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("hpe_session", None)
    if session is not None:
        session.close()


def catalog():
    """What the installed plugins offer (channels, attribution models), for validation."""
    return current_app.extensions["hpe_catalog"]
