"""Decisions: one choice for one user at one touchpoint, or for many users in one call."""

from __future__ import annotations

import orjson
from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from hpe_core.decide import decisions
from hpe_core.deliver import touchpoints
from hpe_core.errors import Forbidden, InvalidInput
from hpe_core.store.vocabulary import KeyKind
from web.api import BASE
from web.api.batch_schemas import DecisionBatchRequestSchema, DecisionBatchSchema
from web.api.delivery import DecisionDeliveredSchema, DecisionDeliverRequestSchema
from web.api.loop_schemas import DecisionQueryArgsSchema
from web.api.request_shapes import fast_loading
from web.api.schemas import PARSER
from web.auth import current_principal, require_any_key
from web.extensions import app_runtime, app_state, db_session

blp = Blueprint("decisions", __name__, url_prefix=BASE, description="Decisions")
blp.ARGUMENTS_PARSER = PARSER  # unreadable JSON is a 400, never a 500
blp.before_request(require_any_key)


@blp.route("/<uuid:config_id>/decisions")
class Decisions(MethodView):
    # An instance, built once; its common shape is loaded without marshmallow's machinery.
    @blp.arguments(fast_loading(DecisionDeliverRequestSchema()))
    @blp.arguments(DecisionQueryArgsSchema(), location="query", as_kwargs=True)
    @blp.response(201, DecisionDeliveredSchema)
    @blp.alt_response(
        200, schema=DecisionDeliveredSchema, description="Nothing eligible (see `reason`)"
    )
    @blp.alt_response(403, description="A dry run or a delivery with a publishable key")
    @blp.alt_response(409, description="The configuration is PAUSED or INACTIVE")
    def post(self, data, config_id, dry_run=False):
        """Request a decision

        Eligibility (channel, candidates, action rules, schedule) → guardrails (frequency
        caps, budget; max action share for treatment) → deterministic treatment/holdout
        assignment → the model (treatment) or the baseline (holdout, and everyone in
        `manual` automation) → a logged decision with its propensity. Works with a
        publishable key.

        With `deliver` (secret key only), the chosen action is also sent on the channel
        in the background (`delivery.status: pending`); see docs/plugins.md.

        With `?dry_run=true` (secret key only): the same answer with `decision_id` null,
        status 200, and `excluded` saying why each other action was left out; nothing is
        logged and no frequency cap or budget is consumed.
        ---
        Internal: backed by hpe_core.deliver.touchpoints.decide_and_deliver.
        """
        deliver = data.pop("deliver", None)  # a DeliverRequest (see DeliverSchema)
        if dry_run:
            return _dry_run(config_id, data, deliver), 200
        result = touchpoints.decide_and_deliver(
            db_session(),
            app_state().touchpoints,
            current_principal(),
            config_id,
            decisions.parse_request(data),
            deliver,
        )
        return _json(result, 201 if result["decision_id"] is not None else 200)


@blp.route("/<uuid:config_id>/decisions/batch")
class DecisionBatches(MethodView):
    @blp.arguments(DecisionBatchRequestSchema())
    @blp.response(201, DecisionBatchSchema)
    @blp.alt_response(403, description="A publishable key, or a delivery it may not ask for")
    @blp.alt_response(409, description="The configuration is PAUSED or INACTIVE")
    def post(self, data, config_id):
        """Request decisions for many users at once

        For an email send to an audience: 1 to 10,000 requests, each shaped like the body
        of `POST /{id}/decisions` (with `deliver` if the chosen actions should be sent
        too). Each goes through the same eligibility, guardrails, assignment and policy
        as a single decision. `decisions` answers each request in request order: a
        decision, or `action_id: null` and a `reason` when nothing was eligible.

        All the decisions (and deliveries) are logged in one transaction: if one request
        is invalid (422, its index in `errors.requests`) or the call fails, nothing is
        logged. Secret key only. For larger audiences, send several calls, or use
        `hpe decide --config ID --input users.ndjson`.
        ---
        Internal: backed by hpe_core.deliver.touchpoints.decide_and_deliver_all.
        """
        principal = current_principal()
        if principal.kind != KeyKind.SECRET:
            raise Forbidden("Batch decisions need a secret key.")
        answers = touchpoints.decide_and_deliver_all(
            db_session(), app_state().touchpoints, principal, config_id, data["requests"]
        )
        return _json({"decisions": answers}, 201)


def _json(document: dict, status: int) -> Response:
    """The answer as JSON, made by orjson: the decision dicts hold exactly the documented
    fields already, and marshmallow's dump cost more CPU than the decision (a batch's
    answer is megabytes). The response schemas document it."""
    return Response(orjson.dumps(document), status=status, mimetype="application/json")


def _dry_run(config_id, data, deliver) -> dict:
    principal = current_principal()
    if principal.kind != KeyKind.SECRET:
        raise Forbidden("A dry run needs a secret key.")
    if deliver is not None:
        raise InvalidInput(
            "A dry run delivers nothing: leave out deliver.", {"deliver": ["Not with dry_run."]}
        )
    found = app_runtime().decisions.try_out(
        db_session(), principal, config_id, decisions.parse_request(data)
    )
    return {**touchpoints.response(found.result), "excluded": dict(found.excluded)}
