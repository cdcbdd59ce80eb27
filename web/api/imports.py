"""Imports of historical logged decisions (NDJSON)."""

from __future__ import annotations

import re

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from hpe_core.learn import imports
from web.api import BASE
from web.api.loop_schemas import ImportResultSchema
from web.auth import current_principal, require_secret_key
from web.extensions import db_session

blp = Blueprint("imports", __name__, url_prefix=BASE, description="Imports")
#: What an Idempotency-Key header may hold (printable ASCII, as Stripe's keys).
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
blp.before_request(require_secret_key)


@blp.route("/<uuid:config_id>/imports")
class Imports(MethodView):
    @blp.response(202, ImportResultSchema)
    @blp.alt_response(409, description="The Idempotency-Key was used for another file")
    @blp.alt_response(413, description="Over 100,000 lines, or a body over the size limit")
    @blp.doc(
        parameters=[
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": "Imports the file once: a retry with the same key and file "
                "answers the first answer; another file under the key is a 409",
            }
        ],
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
        At most 100,000 lines per request: a bigger file is refused whole (413).

        Imported once: send an `Idempotency-Key` header (e.g. the file's name and date).
        The same key with the same file answers the first answer again
        (`Idempotent-Replayed: true`) and imports nothing; the same key with another
        file is a 409. Without the header the file's SHA-256 is the key, so the same
        file sent again to this configuration is recognised too.
        """
        if request.mimetype not in ("application/x-ndjson", "application/jsonl", "text/plain"):
            abort(415, message="Send NDJSON with Content-Type: application/x-ndjson.")
        key = request.headers.get("Idempotency-Key")
        if key is not None and not _KEY.fullmatch(key):
            abort(
                422,
                message="Idempotency-Key: 1-255 printable characters.",
                errors={"Idempotency-Key": ["1-255 printable ASCII characters."]},
            )
        body = request.get_data(cache=False)
        session = db_session()
        result = imports.import_body(
            session, current_principal(), config_id, body, idempotency_key=key
        )
        session.commit()
        if result.replayed:
            return result.answer, 202, {"Idempotent-Replayed": "true"}
        return result.answer
