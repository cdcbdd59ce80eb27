"""Channels the installed plugins provide."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, fields

from hpe_core.deliver.channels import HealthStatus
from plugins.manager import plugin_name_of
from web.api import BASE
from web.api.schemas import ChannelSchema
from web.auth import require_secret_key
from web.extensions import app_runtime

blp = Blueprint("channels", __name__, url_prefix=BASE, description="Channels")
blp.before_request(require_secret_key)


class ChannelQueryArgsSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    health = fields.Boolean(
        load_default=False,
        metadata={"description": "Also run each channel's health check (e.g. SMTP reachable)"},
    )


class ChannelHealthSchema(Schema):
    ok = fields.Boolean()
    detail = fields.String()


class ChannelListSchema(ChannelSchema):
    health = fields.Nested(
        ChannelHealthSchema, metadata={"description": "Only with `?health=true`"}
    )


def check_health(pm, connector) -> HealthStatus:
    """One channel's health through ``hpe_health_check``; a failing check is not ok."""
    try:
        status = pm.hook.hpe_health_check(connector=connector)
    except Exception as exc:  # noqa: BLE001 - a broken check reports, never 500s
        return HealthStatus(ok=False, detail=f"health check failed: {exc!r}")
    return status if isinstance(status, HealthStatus) else HealthStatus(False, "no health check")


@blp.route("/channels")
class Channels(MethodView):
    @blp.arguments(ChannelQueryArgsSchema, location="query")
    @blp.response(200, ChannelListSchema(many=True))
    def get(self, args):
        """List channels

        The channels that configurations may use, one per installed connector plugin.
        With `?health=true`, each also reports whether it can work now.
        """
        pm = app_runtime().pm
        result = []
        for name, connector in sorted(app_runtime().channels.items()):
            item = {
                "name": name,
                "description": connector.description,
                "plugin": plugin_name_of(pm, type(connector)),
            }
            if args["health"]:
                status = check_health(pm, connector)
                item["health"] = {"ok": status.ok, "detail": status.detail}
            result.append(item)
        return result
