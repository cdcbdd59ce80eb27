"""Channels the installed plugins provide.

Their health is the operator's business: hosts, ports, logins and the errors they give
stay with operators (``hpe channels list --health``, the logs). A tenant's ``GET
/channels?health=true`` learns whether each channel works, no more, and its calls reuse
one check per channel every :data:`HEALTH_CACHE_SECONDS` (a tenant cannot make HPE log
in to the SMTP server on every request).
"""

from __future__ import annotations

import logging
import threading
import time

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, fields

from hpe_core.deliver.channels import HealthStatus
from plugins.manager import plugin_name_of
from web.api import BASE
from web.api.schemas import ChannelSchema
from web.auth import require_secret_key
from web.extensions import app_runtime

log = logging.getLogger(__name__)
blp = Blueprint("channels", __name__, url_prefix=BASE, description="Channels")
#: How long one health check answers every tenant's GET /channels?health=true.
HEALTH_CACHE_SECONDS = 30.0
_TENANT_DETAIL = {True: "working", False: "not working: your HPE operator has the details"}
blp.before_request(require_secret_key)


class ChannelQueryArgsSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    health = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Also say whether each channel works now (checked at most every "
            "30 seconds; the details are for operators: `hpe channels list --health`)"
        },
    )


class ChannelHealthSchema(Schema):
    ok = fields.Boolean()
    detail = fields.String(metadata={"description": "`working`, or `not working: ...`"})


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


class _HealthCache:
    """Each channel's last health check, shared by every tenant for a while; a failing
    check is logged with its detail for the operator (once per check)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._checked: dict[str, tuple[float, bool]] = {}

    def ok(self, pm, name: str, connector) -> bool:
        now = time.monotonic()
        with self._lock:  # one check at a time: concurrent calls wait for its answer
            found = self._checked.get(name)
            if found is None or now - found[0] > HEALTH_CACHE_SECONDS:
                status = check_health(pm, connector)
                if not status.ok:
                    log.warning("channel %s is not working: %s", name, status.detail)
                found = (now, bool(status.ok))
                self._checked[name] = found
        return found[1]


def _health_cache() -> _HealthCache:
    from flask import current_app

    return current_app.extensions.setdefault("hpe_channel_health", _HealthCache())


@blp.route("/channels")
class Channels(MethodView):
    @blp.arguments(ChannelQueryArgsSchema, location="query")
    @blp.response(200, ChannelListSchema(many=True))
    def get(self, args):
        """List channels

        The channels that configurations may use, one per installed connector plugin.
        With `?health=true`, each also reports whether it works now (`ok`); why not is
        for the operator, who sees it with `hpe channels list --health` and in the logs.
        """
        pm = app_runtime().pm
        cache = _health_cache() if args["health"] else None
        result = []
        for name, connector in sorted(app_runtime().channels.items()):
            item = {
                "name": name,
                "description": connector.description,
                "plugin": plugin_name_of(pm, type(connector)),
            }
            if cache is not None:
                ok = cache.ok(pm, name, connector)
                item["health"] = {"ok": ok, "detail": _TENANT_DETAIL[ok]}
            result.append(item)
        return result
