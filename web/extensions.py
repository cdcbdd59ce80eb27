"""Per-app state: the process's runtime (:mod:`hpe_core.runtime`) and what the web layer
builds on it, bound in ``create_app`` — never at import.

It lives in ``app.extensions["hpe"]`` rather than in module globals so that several apps
(tests) can coexist in one process, and it is one typed object (:class:`AppState`) rather
than a key per part: ``app_runtime(app).sessions`` is checked by the type checker and
found by grep, ``app.extensions["hpe_sessions"]`` was neither.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from hpe_core.deliver.touchpoints import TouchpointParts
from hpe_core.learn.outcome_tokens import OutcomeTokens
from hpe_core.runtime import Runtime
from hpe_core.secret_keys import SecretKeys
from plugins.app_runtime import EXTENSION_KEY, app_runtime

__all__ = ["AppState", "app_runtime", "app_state", "bind_runtime", "catalog", "db_session"]


@dataclasses.dataclass(eq=False)
class AppState:
    """What one Flask app of HPE runs on.

    :param runtime: shared with the workers: settings, sessions, plugins, channels, jobs
    :param secret_keys: the key ring (``SECRET_KEY`` signs, the fallbacks verify)
    :param touchpoints: the decide-and-deliver parts, built once rather than per request
    :param api: the flask-smorest ``Api`` (its OpenAPI document)
    :param sweeper: the inline sweeper thread (embedded default only), else None
    :param key_cache: verified API keys, so the decision hot path skips the lookup
    :param sign_in_limiter: failed dashboard sign-ins per client address
    """

    runtime: Runtime
    secret_keys: SecretKeys
    touchpoints: TouchpointParts
    api: Any = None
    sweeper: Any = None
    key_cache: Any = None
    sign_in_limiter: Any = None


def bind_runtime(app: Flask, runtime: Runtime) -> AppState:
    """Give the app its runtime, and the request session a teardown."""
    keys = SecretKeys.from_settings(runtime.settings)
    state = AppState(
        runtime=runtime,
        secret_keys=keys,
        # The backend is looked up when a delivery is enqueued, so a test (or an
        # operator's hook) that swaps runtime.jobs is honoured.
        touchpoints=TouchpointParts(
            engine=runtime.decisions,
            pm=runtime.pm,
            channels=runtime.channels,
            enqueue_delivery=lambda delivery_id: runtime.jobs.enqueue_delivery(
                delivery_id, runtime=runtime
            ),
            enqueue_deliveries=lambda delivery_ids: runtime.jobs.enqueue_deliveries(
                delivery_ids, runtime=runtime
            ),
            outcome_tokens=OutcomeTokens(keys),
        ),
    )
    app.extensions[EXTENSION_KEY] = state
    app.teardown_appcontext(_close_session)
    return state


def app_state(app: Flask | None = None) -> AppState:
    """The state of ``app`` (default: the current app)."""
    return (app or current_app).extensions[EXTENSION_KEY]


def db_session() -> Session:
    """The request's session: one per app context, closed (rolled back if open) at teardown."""
    if "hpe_session" not in g:
        g.hpe_session = app_runtime().sessions()
    return g.hpe_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("hpe_session", None)
    if session is not None:
        try:
            session.close()
        except Exception:  # noqa: BLE001 - the database went away: the answer is already made
            # A rollback on a dead connection fails; raising here would replace the answer
            # (a 503, or a success) with gunicorn's HTML 500. Drop the connection instead.
            session.invalidate()


def catalog():
    """What the installed plugins offer (channels, attribution models), for validation."""
    return app_runtime().catalog
