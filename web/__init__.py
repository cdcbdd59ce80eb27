"""The Flask app: REST API (flask-smorest), auth and error handling."""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path

from flask import Flask
from flask_smorest import Api

from hpe_core.store import db as hpe_db
from hpe_core.tenancy.settings import ATTRIBUTION_MODELS
from plugins.manager import make_plugin_manager
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

    # PLUGIN_MANAGER: a manager built by the caller (the plugin test kit's hpe_app).
    pm = app.config.get("PLUGIN_MANAGER")
    if pm is None:
        pm = make_plugin_manager(
            load=app.config["LOAD_PLUGINS"],
            blocked=app.config["BLOCKED_PLUGINS"],
            trace=app.config.get("TRACE_PLUGINS", False),
        )
    app.extensions["hpe_pm"] = pm
    _start_channels(app, pm)

    # One Api per app: an Api object remembers its app and blueprints.
    api = Api(app)
    app.extensions["hpe_api"] = api
    from web.api import (
        activities,
        channels,
        configs,
        decisions,
        evaluation,
        health,
        imports,
        metrics,
        models,
        outcomes,
        recommendations,
    )

    for module in (
        channels,
        configs,
        decisions,
        outcomes,
        activities,
        metrics,
        evaluation,
        recommendations,
        models,
        imports,
    ):
        api.register_blueprint(module.blp)
    api.register_blueprint(health.blp)
    _register_plugin_blueprints(app, api, pm)
    register_error_handlers(app)
    _start_learning_loop(app)
    return app


def _start_channels(app: Flask, pm) -> None:
    """Channel connectors (configured from ``PLUGINS``) and the settings catalog."""
    from hpe_core.deliver.channels import ChannelRuntime
    from hpe_core.deliver.delivery import TrackingLinks
    from hpe_core.measure.measurement import MeasurementPlugins
    from plugins.manager import PluginCatalog, attribution_models, build_channels

    public_url = app.config.get("PUBLIC_URL")
    runtime = ChannelRuntime(
        links=TrackingLinks(app.config["SECRET_KEY"], public_url), public_url=public_url
    )
    channels = build_channels(pm, app.config["PLUGINS"], runtime)
    app.extensions["hpe_channels"] = channels
    models = sorted(attribution_models(pm)) or list(ATTRIBUTION_MODELS)
    app.extensions["hpe_catalog"] = PluginCatalog(
        {name: type(connector) for name, connector in channels.items()}, models
    )
    app.extensions["hpe_measurement"] = MeasurementPlugins(
        attribution_models=attribution_models(pm),
        channel_costs={
            name: float(getattr(connector, "cost_per_decision", lambda: 0.0)())
            for name, connector in channels.items()
        },
    )


def _register_plugin_blueprints(app: Flask, api, pm) -> None:
    """Inbound webhooks, then every blueprint plugins register (``hpe_register_blueprints``)."""
    from flask_smorest import Blueprint as ApiBlueprint

    from web.api import webhooks

    api.register_blueprint(webhooks.blp)
    for batch in pm.hook.hpe_register_blueprints():
        for blueprint in batch or ():
            if isinstance(blueprint, ApiBlueprint):
                api.register_blueprint(blueprint)
            else:
                app.register_blueprint(blueprint)


def _start_learning_loop(app: Flask) -> None:
    from hpe_core.decide.decisions import DecisionEngine
    from worker.queues import Sweeper, make_backend

    sessions = app.extensions["hpe_sessions"]
    app.extensions["hpe_decisions"] = DecisionEngine(
        sessions, channel_costs=app.extensions["hpe_measurement"].channel_costs
    )
    backend = make_backend(
        app.config["REDIS_URL"],
        sessions,
        background=app.config["INLINE_SWEEPER"],
        plugins=app.extensions["hpe_measurement"],
    )
    app.extensions["hpe_jobs"] = backend
    # Embedded default: this process also closes reward windows and learns, in the
    # background. With Redis, `hpe worker` processes do both instead.
    if backend.name == "inline" and app.config["INLINE_SWEEPER"]:
        app.extensions["hpe_sweeper"] = Sweeper(
            backend,
            sessions,
            interval=app.config["SWEEP_INTERVAL"],
            app=app,
            measure_interval=app.config["MEASURE_INTERVAL"],
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
