"""Channels the installed plugins provide."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from plugins.manager import connectors, plugin_name_of
from web.api import BASE
from web.api.schemas import ChannelSchema
from web.auth import require_secret_key

blp = Blueprint("channels", __name__, url_prefix=BASE, description="Channels")
blp.before_request(require_secret_key)


@blp.route("/channels")
class Channels(MethodView):
    @blp.response(200, ChannelSchema(many=True))
    def get(self):
        """List channels

        The channels that configurations may use, one per installed connector plugin.
        """
        pm = current_app.extensions["hpe_pm"]
        return [
            {"name": name, "description": cls.description, "plugin": plugin_name_of(pm, cls)}
            for name, cls in sorted(connectors(pm).items())
        ]
