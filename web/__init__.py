"""The Flask app: REST API (flask-smorest), auth and error handling."""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path

from flask import Flask
from flask_smorest import Api

from hpe_core import db as hpe_db
from hpe_core.configs import Catalog
from hpe_core.settings import ATTRIBUTION_MODELS
from plugins.manager import connectors, make_plugin_manager
from web.config import DefaultConfig
from web.errors import register_error_handlers
from web.extensions import init_database

log = logging.getLogger(__name__)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: layered config, database, plugins, API.

    Config layers, later wins: ``web.config.DefaultConfig`` → ``instance/config.py`` →
    ``HPE_*`` environment variables → ``test_config``.
    """
    instance_path = os.environ.get("HPE_INSTANCE_PATH") or str(Path.cwd() / "instance")
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    # The embedded server (hpe simulate) must not log every request to the terminal.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app.config.from_object(DefaultConfig)
    # from_object copies references: give each app its own copies of the mutable defaults,
    # or HPE_PLUGINS__email__... would change DefaultConfig (and every other app) in place.
    for key, value in list(app.config.items()):
        if isinstance(value, dict | list):
            app.config[key] = copy.deepcopy(value)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("HPE")
    if test_config:
        app.config.from_mapping(test_config)

    if not app.config["DATABASE_URL"]:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'hpe.db'}"
    app.config["DATABASE_URL"] = normalize_database_url(app.config["DATABASE_URL"])

    init_database(app)
    _prepare_schema(app)

    pm = make_plugin_manager(
        load=app.config["LOAD_PLUGINS"], blocked=app.config["BLOCKED_PLUGINS"]
    )
    app.extensions["hpe_pm"] = pm
    app.extensions["hpe_catalog"] = Catalog(
        channels=sorted(connectors(pm)), attribution_models=ATTRIBUTION_MODELS
    )

    # One Api per app: an Api object remembers its app and blueprints.
    api = Api(app)
    app.extensions["hpe_api"] = api
    from web.api import (
        activities,
        channels,
        configs,
        decisions,
        health,
        imports,
        metrics,
        models,
        outcomes,
    )

    for module in (channels, configs, decisions, outcomes, activities, metrics, models, imports):
        api.register_blueprint(module.blp)
    api.register_blueprint(health.blp)
    register_error_handlers(app)
    _start_learning_loop(app)
    return app


def _start_learning_loop(app: Flask) -> None:
    from hpe_core.decisions import DecisionEngine
    from worker.queues import Sweeper, make_backend

    sessions = app.extensions["hpe_sessions"]
    app.extensions["hpe_decisions"] = DecisionEngine(sessions)
    backend = make_backend(
        app.config["REDIS_URL"], sessions, background=app.config["INLINE_SWEEPER"]
    )
    app.extensions["hpe_jobs"] = backend
    # Embedded default: this process also closes reward windows and learns, in the
    # background. With Redis, `hpe worker` processes do both instead.
    if backend.name == "inline" and app.config["INLINE_SWEEPER"]:
        app.extensions["hpe_sweeper"] = Sweeper(
            backend, sessions, interval=app.config["SWEEP_INTERVAL"]
        ).start()


def normalize_database_url(url: str) -> str:
    # psycopg 3 is the driver we ship; accept the common "postgresql://" spelling.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _prepare_schema(app: Flask) -> None:
    engine = app.extensions["hpe_engine"]
    auto = app.config["AUTO_MIGRATE"]
    if auto is None:
        auto = engine.dialect.name == "sqlite"
    if auto:
        hpe_db.upgrade(engine)
        return
    if app.config.get("SCHEMA_CHECK", True):
        current, head = hpe_db.current_revision(engine), hpe_db.head_revision()
        if current != head:
            raise RuntimeError(
                f"The database is at schema revision {current or 'none'} but this HPE needs "
                f"{head}: run `hpe db upgrade`."
            )
