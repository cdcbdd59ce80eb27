"""Connected content: a decision fetched by an email tool while it renders a message."""

from __future__ import annotations

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, fields, validate

from hpe_core.decide.decisions import DecisionRequest
from hpe_core.integrations import connected_content
from hpe_core.store.limits import MAX_USER_ID_LENGTH
from web.api import BASE
from web.api.loop_schemas import DecisionSchema
from web.auth import current_principal, require_any_key_or_query
from web.extensions import app_state, db_session

blp = Blueprint(
    "connected_content",
    __name__,
    url_prefix=BASE,
    description="Connected content: decisions fetched by email tools at send time",
)
blp.before_request(require_any_key_or_query)

#: Headers that keep every cache (the tool's, a proxy's) from reusing an answer.
NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0, private",
    "Pragma": "no-cache",
    "Expires": "0",
}


class ConnectedQueryArgsSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # the ctx.<key> parameters are read apart

    user_id = fields.String(required=True, validate=validate.Length(1, MAX_USER_ID_LENGTH))
    channel = fields.String(load_default="email", validate=validate.Length(1, 64))
    send_id = fields.String(
        validate=validate.Length(1, connected_content.MAX_SEND_ID),
        metadata={
            "description": "The tool's id of this send (campaign, dispatch): every fetch for "
            "one person's message then answers the one decision logged by the first"
        },
    )
    candidates = fields.String(
        metadata={"description": "Comma-separated action ids to choose among"}
    )
    key = fields.String(
        metadata={
            "description": "The API key, for tools that cannot send an Authorization header "
            "(a publishable key: the URL is logged by the tool)"
        }
    )


class ConnectedDecisionSchema(DecisionSchema):
    content = fields.Dict(
        metadata={"description": "The chosen action's content for the channel (`{}`: none)"}
    )
    replayed = fields.Boolean(
        metadata={"description": "true: an earlier fetch of the same send logged this decision"}
    )


@blp.route("/<uuid:config_id>/decisions/connected")
class ConnectedContent(MethodView):
    @blp.arguments(ConnectedQueryArgsSchema, location="query")
    @blp.response(
        200,
        ConnectedDecisionSchema,
        headers={name: {"schema": {"type": "string"}} for name in NO_CACHE},
    )
    @blp.alt_response(409, description="The configuration is PAUSED or INACTIVE")
    def get(self, args, config_id):
        """Fetch a decision for a message (connected content)

        For Braze Connected Content, Iterable data feeds, Customer.io webhook actions:
        the tool renders a message and fetches
        `/{id}/decisions/connected?user_id=…&channel=email&send_id=…&ctx.<key>=…` with a
        publishable (or secret) key. The answer is a decision logged like any other
        (`POST /{id}/decisions`), plus the chosen action's `content` for the channel.
        Context comes as `ctx.<key>=<value>` parameters (plain numbers and true/false are
        typed). With `send_id`, repeated fetches for one person's message (tools render
        HTML and text parts apart, and retry) answer the same decision. Nothing eligible:
        `action_id: null` and a `reason`. The answer must never be cached: see the
        headers.
        """
        candidates = args.get("candidates")
        result = connected_content.fetch(
            db_session(),
            app_state().touchpoints,
            current_principal(),
            config_id,
            DecisionRequest(
                user_id=args["user_id"],
                channel=args["channel"],
                context=connected_content.context_from_query(request.args),
                candidates=[c for c in candidates.split(",") if c] if candidates else None,
            ),
            connected_content.check_send_id(args.get("send_id")),
        )
        body = {**result.answer, "content": result.content, "replayed": result.replayed}
        return body, 200, NO_CACHE
