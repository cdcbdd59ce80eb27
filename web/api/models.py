"""Model versions of a configuration, and rollback."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from hpe_core.decide.policy import store
from hpe_core.tenancy import configs
from web.api import BASE
from web.api.loop_schemas import ModelVersionSchema, RollbackSchema
from web.api.pagination import SQLCursorPage
from web.api.schemas import PARSER
from web.auth import current_principal, require_secret_key
from web.extensions import app_runtime, db_session

blp = Blueprint("models", __name__, url_prefix=BASE, description="Model versions")
blp.ARGUMENTS_PARSER = PARSER  # unreadable JSON is a 400, never a 500
blp.before_request(require_secret_key)


@blp.route("/<uuid:config_id>/models")
class Models(MethodView):
    @blp.response(200, ModelVersionSchema(many=True))
    @blp.paginate(SQLCursorPage)
    def get(self, config_id):
        """List model versions

        Newest first. The newest version serves decisions; each learn run adds one.
        """
        session = db_session()
        config = configs.get(session, current_principal(), config_id)
        return store.list_versions(session, config.id)


@blp.route("/<uuid:config_id>/model/rollback")
class ModelRollback(MethodView):
    @blp.arguments(RollbackSchema)
    @blp.response(200, ModelVersionSchema)
    def post(self, data, config_id):
        """Roll back the model

        409 if that version was trained with other exploration settings than the current.

        Restores an earlier version by saving a copy of it as the newest version;
        learning continues from it and every API process switches to it within seconds.
        """
        session = db_session()
        restored = store.roll_back_configuration(
            session, current_principal(), config_id, data["version"]
        )
        session.commit()
        app_runtime().decisions.models.reload(restored.config_id)
        return restored
