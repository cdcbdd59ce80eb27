"""Configurations: create, list, read, update, deactivate."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from hpe_core.tenancy import configs
from web.api import BASE
from web.api.pagination import SQLCursorPage
from web.api.schemas import (
    PARSER,
    ConfigCreateSchema,
    ConfigPatchSchema,
    ConfigQueryArgsSchema,
    ConfigSchema,
)
from web.auth import current_principal, require_secret_key
from web.extensions import app_runtime, catalog, db_session

blp = Blueprint("configs", __name__, url_prefix=BASE, description="Configurations")
blp.ARGUMENTS_PARSER = PARSER  # unreadable JSON is a 400, never a 500
blp.before_request(require_secret_key)


@blp.route("/")
class Configs(MethodView):
    @blp.arguments(ConfigQueryArgsSchema, location="query")
    @blp.response(200, ConfigSchema(many=True))
    @blp.paginate(SQLCursorPage)
    def get(self, args):
        """List configurations

        Newest first, paginated (`page`, `page_size`; totals in the `X-Pagination`
        header), optionally filtered by `status`.
        """
        return configs.query(db_session(), current_principal(), status=args.get("status"))

    @blp.arguments(ConfigCreateSchema)
    @blp.response(201, ConfigSchema)
    def post(self, data):
        """Create a configuration

        Settings are validated and returned with every default filled in.
        """
        session = db_session()
        config = configs.create(session, current_principal(), catalog(), **data)
        session.commit()
        return config


@blp.route("/<uuid:config_id>")
class ConfigsById(MethodView):
    @blp.response(200, ConfigSchema)
    def get(self, config_id):
        """Get a configuration"""
        return configs.get(db_session(), current_principal(), config_id)

    @blp.arguments(ConfigPatchSchema)
    @blp.response(200, ConfigSchema)
    def patch(self, data, config_id):
        """Update a configuration

        Change `name`, `status` and/or `settings`. Settings are a JSON merge patch
        (RFC 7386) on the stored settings; the result is validated whole, so an invalid
        patch changes nothing. Every change is written to the activity log.
        """
        session = db_session()
        if "settings" in data:
            data["settings_patch"] = data.pop("settings")
        config = configs.update(session, current_principal(), catalog(), config_id, **data)
        session.commit()
        _changed(config)
        return config

    @blp.response(200, ConfigSchema)
    def delete(self, config_id):
        """Deactivate a configuration

        Sets status `INACTIVE`: decisions stop (409), history is kept.
        """
        session = db_session()
        config = configs.deactivate(session, current_principal(), config_id)
        session.commit()
        _changed(config)
        return config


def _changed(config) -> None:
    # This process serves the change (e.g. the kill switch) at once; others within the
    # decision engine's snapshot TTL.
    app_runtime().decisions.invalidate(config.id)
