"""Imports of historical logged decisions (NDJSON)."""

from __future__ import annotations

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from hpe_core.learn import imports
from web.api import BASE
from web.api.loop_schemas import ImportResultSchema
from web.auth import current_principal, require_secret_key
from web.extensions import db_session

blp = Blueprint("imports", __name__, url_prefix=BASE, description="Imports")
blp.before_request(require_secret_key)


@blp.route("/<uuid:config_id>/imports")
class Imports(MethodView):
    @blp.response(202, ImportResultSchema)
    @blp.doc(
        requestBody={
            "required": True,
            "content": {
                "application/x-ndjson": {
                    "schema": {"type": "string"},
                    "example": '{"user_id": "u1", "channel": "email", "timestamp": '
                    '"2026-10-01T09:00:00Z", "context": {"segment": "new"}, '
                    '"action_id": "spring-sale", "probability": 0.25, "reward": 1}\n',
                }
            },
        }
    )
    def post(self, config_id):
        """Import logged decisions

        NDJSON, one logged decision per line: `{user_id, channel, timestamp, context,
        action_id, probability, reward}` or `outcomes: [{type, value?, occurred_at?}]`
        instead of `reward`. Bad lines are rejected with their line number and reason;
        the rest are imported, learned at the next sweep and shown in daily metrics.
        """
        if request.mimetype not in ("application/x-ndjson", "application/jsonl", "text/plain"):
            abort(415, message="Send NDJSON with Content-Type: application/x-ndjson.")
        body = request.get_data(cache=False)
        session = db_session()
        result = imports.import_lines(session, current_principal(), config_id, body.splitlines())
        session.commit()
        return result
