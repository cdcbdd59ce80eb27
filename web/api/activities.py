"""The activity log of a configuration."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from hpe_core.tenancy import activities, configs
from web.api import BASE
from web.api.pagination import SQLCursorPage
from web.api.schemas import ActivityQueryArgsSchema, ActivitySchema
from web.auth import current_principal, require_secret_key
from web.extensions import db_session

blp = Blueprint("activities", __name__, url_prefix=BASE, description="Activity log")
blp.before_request(require_secret_key)


@blp.route("/<uuid:config_id>/activities")
class Activities(MethodView):
    @blp.arguments(ActivityQueryArgsSchema, location="query")
    @blp.response(200, ActivitySchema(many=True))
    @blp.paginate(SQLCursorPage)
    def get(self, args, config_id):
        """List a configuration's activities

        Newest first, paginated; `type` filters exactly (`config.updated`) or by
        family (`config.*`).
        """
        session = db_session()
        config = configs.get(session, current_principal(), config_id)
        return activities.query(session, config.id, type=args.get("type"))
