"""The app a worker process runs jobs in: created once per process, bound here."""

from __future__ import annotations

from contextlib import contextmanager

from flask import Flask

_app: Flask | None = None


def bind_app(app: Flask) -> None:
    """Make ``app`` the one jobs in this process use (the worker boots it at start)."""
    global _app
    _app = app


def current_app() -> Flask:
    global _app
    if _app is None:
        # An RQ worker started without `hpe worker` (e.g. plain `rq worker`): boot lazily.
        from web import create_app

        _app = create_app()
    return _app


@contextmanager
def job_session():
    """A database session for one job, always closed."""
    app = current_app()
    session = app.extensions["hpe_sessions"]()
    try:
        yield session
    finally:
        session.close()
