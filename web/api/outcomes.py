"""Outcomes: what happened after a decision."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from hpe_core.events import notify
from hpe_core.learn import outcomes
from web.api import BASE
from web.api.loop_schemas import OutcomesAcceptedSchema, OutcomesRequestSchema
from web.api.schemas import PARSER
from web.auth import current_principal, require_any_key
from web.extensions import app_runtime, app_state, db_session

blp = Blueprint("outcomes", __name__, url_prefix=BASE, description="Outcomes")
blp.ARGUMENTS_PARSER = PARSER  # unreadable JSON is a 400, never a 500
blp.before_request(require_any_key)


@blp.route("/<uuid:config_id>/outcomes")
class Outcomes(MethodView):
    @blp.arguments(OutcomesRequestSchema)
    @blp.response(202, OutcomesAcceptedSchema)
    def post(self, data, config_id):
        """Report outcomes

        One outcome, or a batch as `{"outcomes": [...]}` (up to 1000, all or nothing).
        Tie each to its decision with `decision_id`, or give a `user_id` for attribution.
        The same `idempotency_key` (or the same decision and type) is counted once and
        answered the same (`duplicate: true`, counted in `duplicates`, not in
        `accepted`); the same `idempotency_key` with another payload is a 409. A value
        event or a user-level outcome sent without `idempotency_key` and `occurred_at`
        counts once if an identical one (same decision or user, type and value) came in
        the last 10 minutes: a network retry. `occurred_at` may not be in the future nor
        before its decision (5 minutes of clock skew allowed); `value` is capped
        (`HPE_MAX_OUTCOME_VALUE`). An outcome after the decision's reward window is kept but
        flagged `late` and not learned. A type that `reward.events` does not list is
        accepted too, counted in metrics under its type, and named in `unweighted`: it
        weighs nothing until you add it to the reward.

        With a publishable key (web pages): only outcomes of decisions the key was given,
        each with the decision's `outcome_token`, of the types the configuration's
        `publishable_keys.outcome_events` lists (impression, view, click by default),
        once per decision and type, without `value`, `user_id`, `occurred_at` or
        `idempotency_key` (403 otherwise). Value events and user-level outcomes need a
        secret key.
        """
        items = data["outcomes"] if "outcomes" in data else [data]
        session = db_session()
        principal = current_principal()
        events = outcomes.parse_events(items)
        recorded = outcomes.record(
            session,
            principal,
            config_id,
            events,
            max_value=current_app.config["MAX_OUTCOME_VALUE"],
            tokens=app_state().touchpoints.outcome_tokens,
        )
        session.commit()
        stored = [
            event
            for event, answer in zip(events, recorded.outcomes, strict=True)
            if not answer.duplicate
        ]
        if stored:  # duplicates were announced when they were stored
            notify(
                app_runtime().pm.hook.hpe_on_outcomes,
                workspace_id=principal.workspace_id,
                config_id=config_id,
                outcomes=stored,
                source="api",
            )
        return {
            "accepted": recorded.accepted,
            "duplicates": recorded.duplicates,
            "outcomes": recorded.outcomes,
            "unweighted": recorded.unweighted,
        }
