"""Decisions: one choice for one user at one touchpoint."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from hpe_core.decide import decisions
from hpe_core.deliver import touchpoints
from hpe_core.errors import Forbidden, InvalidInput
from hpe_core.store.vocabulary import KeyKind
from web.api import BASE
from web.api.delivery import DecisionDeliveredSchema, DecisionDeliverRequestSchema
from web.api.loop_schemas import DecisionQueryArgsSchema
from web.api.schemas import PARSER
from web.auth import current_principal, require_any_key
from web.extensions import app_runtime, app_state, db_session

blp = Blueprint("decisions", __name__, url_prefix=BASE, description="Decisions")
blp.ARGUMENTS_PARSER = PARSER  # unreadable JSON is a 400, never a 500
blp.before_request(require_any_key)


@blp.route("/<uuid:config_id>/decisions")
class Decisions(MethodView):
    @blp.arguments(DecisionDeliverRequestSchema())  # an instance: built once, not per request
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
        if result["decision_id"] is None:
            return result, 200
        return result


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
