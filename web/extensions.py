"""Per-app resources (database, plugin manager), bound in ``create_app`` — never at import.

They live in ``app.extensions`` rather than module globals so that several apps (tests,
the worker) can coexist in one process.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from hpe_core.store.db import make_engine, make_session_factory


def init_database(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["hpe_engine"] = engine
    app.extensions["hpe_sessions"] = make_session_factory(engine)
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
