"""The Flask app: REST API (flask-smorest), the dashboard, auth and error handling."""

from __future__ import annotations

import logging

from flask import Flask
from flask_smorest import Api

from hpe_core.runtime import default_instance_path
from web import request_limits
from web.config import DefaultConfig
from web.errors import register_error_handlers
from web.extensions import app_state, bind_runtime

log = logging.getLogger(__name__)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app on this process's runtime (:mod:`hpe_core.runtime`): settings,
    database, plugins and jobs, exactly as ``hpe worker`` builds them; then the API.

    Settings layers, later wins: ``web.config.DefaultConfig`` → ``instance/config.py`` →
    ``HPE_*`` environment variables → ``test_config``. ``test_config["PLUGIN_MANAGER"]``:
    a plugin manager built by the caller (the plugin test kit's ``hpe_app``).
    """
    from worker.boot import build_runtime

    instance_path = default_instance_path()
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    # The embedded server (hpe simulate) must not log every request to the terminal.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    runtime = build_runtime(
        test_config,
        instance_path=instance_path,
        defaults=DefaultConfig,
        plugin_manager=(test_config or {}).get("PLUGIN_MANAGER"),
    )
    app.config.update(runtime.settings)
    bind_runtime(app, runtime)
    _trust_proxies(app)

    # One Api per app: an Api object remembers its app and blueprints.
    api = Api(app)
    app_state(app).api = api
    from web.api import (
        activities,
        audience_schedules,
        channel_operations,
        channels,
        configs,
        connected_content,
        decisions,
        evaluation,
        health,
        imports,
        metrics,
        models,
        outcomes,
        recommendations,
        webhook_endpoints,
    )
    from web.api import exports as exports_api

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
        webhook_endpoints,
        exports_api,
        connected_content,
        channel_operations,
        audience_schedules,
    ):
        api.register_blueprint(module.blp)
    api.register_blueprint(health.blp)
    from web.api.delivery import document_recipients

    document_recipients(api, runtime.channels)  # <Channel>Recipient in the OpenAPI document
    from web.api import survey  # SC-003's satisfaction report

    api.register_blueprint(survey.blp)
    _register_plugin_blueprints(app, api, runtime.pm)
    from web.compat.personalizer import bp as personalizer  # Azure Personalizer's REST API

    app.register_blueprint(personalizer)
    from web.dashboard import init_dashboard

    init_dashboard(app)
    register_error_handlers(app)
    request_limits.init_app(app)  # bodies over their endpoint's limit: 413 before reading
    from web import prometheus  # GET /metrics and the decision latency histogram

    prometheus.init_app(app)
    from web import request_ids  # X-Request-ID, and JSON logs with it (LOG_FORMAT=json)

    request_ids.init_app(app)
    _start_inline_sweeper(app, runtime)
    return app


def _trust_proxies(app: Flask) -> None:
    trusted = int(app.config.get("PROXY_FIX") or 0)
    if trusted > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted, x_proto=trusted, x_host=trusted)


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


def _start_inline_sweeper(app: Flask, runtime) -> None:
    # Embedded default: this process also closes reward windows and learns, in the
    # background. With Redis, `hpe worker` processes do both instead.
    from worker.queues import Sweeper

    if runtime.jobs.name == "inline" and runtime.settings["INLINE_SWEEPER"]:
        app_state(app).sweeper = Sweeper(
            runtime.jobs,
            runtime.sessions,
            interval=runtime.settings["SWEEP_INTERVAL"],
            runtime=runtime,
            measure_interval=runtime.settings["MEASURE_INTERVAL"],
        ).start()
