"""Off-policy evaluation of the model, the baseline and the logged policy."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from hpe_core.measure import evaluation
from web.api import BASE
from web.auth import current_principal, require_secret_key
from web.extensions import db_session

blp = Blueprint("evaluation", __name__, url_prefix=BASE, description="Evaluation")
blp.before_request(require_secret_key)

_POLICY_NAMES = ", ".join(evaluation.POLICIES)


class EvaluationQueryArgsSchema(Schema):
    from_ = fields.Date(data_key="from", metadata={"description": "First day, YYYY-MM-DD"})
    to = fields.Date(metadata={"description": "Last day (inclusive), YYYY-MM-DD"})
    policies = fields.List(
        fields.String(),
        metadata={
            "description": f"Policies to evaluate, comma-separated or repeated: {_POLICY_NAMES} "
            f"(default {', '.join(evaluation.DEFAULT_POLICIES)})"
        },
    )
    limit = fields.Integer(
        load_default=evaluation.DEFAULT_LIMIT,
        validate=validate.Range(1, evaluation.MAX_LIMIT),
        metadata={"description": "Evaluate at most this many of the most recent decisions"},
    )


class _PolicyEstimateSchema(Schema):
    ips = fields.Float(allow_none=True, metadata={"description": "Inverse propensity scoring"})
    snips = fields.Float(allow_none=True, metadata={"description": "Self-normalized IPS"})
    dr = fields.Float(allow_none=True, metadata={"description": "Doubly robust"})
    dm = fields.Float(
        allow_none=True, metadata={"description": "Direct method (the reward model alone)"}
    )
    ci_low = fields.Float(allow_none=True, metadata={"description": "DR 95% interval, low"})
    ci_high = fields.Float(allow_none=True, metadata={"description": "DR 95% interval, high"})
    n = fields.Integer(metadata={"description": "Logged decisions used"})
    ess = fields.Float(
        allow_none=True,
        metadata={"description": "Effective sample size (sum w)^2 / sum w^2; low: distrust"},
    )
    ips_ci = fields.List(fields.Float(allow_none=True), metadata={"description": "[low, high]"})
    snips_ci = fields.List(fields.Float(allow_none=True), metadata={"description": "[low, high]"})
    dr_ci = fields.List(fields.Float(allow_none=True), metadata={"description": "[low, high]"})


class _ActionMeanSchema(Schema):
    n = fields.Integer(metadata={"description": "Times the action was logged"})
    mean = fields.Float(metadata={"description": "Its shrunk mean reward"})


class _RewardModelSchema(Schema):
    name = fields.String(metadata={"description": "`shrunk_means`"})
    prior_weight = fields.Float()
    global_mean = fields.Float(allow_none=True)
    actions = fields.Dict(keys=fields.String(), values=fields.Nested(_ActionMeanSchema))


class _DateRangeSchema(Schema):
    from_ = fields.Date(
        data_key="from", attribute="date_from", metadata={"description": "First day"}
    )
    to = fields.Date(attribute="date_to", metadata={"description": "Last day (inclusive)"})


class EvaluationSchema(Schema):
    """Dumps :class:`hpe_core.results.Evaluation`."""

    config_id = fields.UUID()
    from_ = fields.Date(data_key="from", attribute="date_from")
    to = fields.Date(attribute="date_to")
    model_version = fields.Integer(
        allow_none=True,
        metadata={"description": "Model version scored; null: the untrained model would serve"},
    )
    n = fields.Integer(metadata={"description": "Logged decisions used"})
    skipped = fields.Integer(
        metadata={"description": "Decisions left out: their action was removed since"}
    )
    available = fields.Nested(
        _DateRangeSchema,
        allow_none=True,
        metadata={
            "description": "UTC dates of this configuration's first and last evaluable "
            "decisions, given when `from`..`to` holds none (e.g. imported history older "
            "than the default 30 days: pass these as `from`/`to`); null otherwise"
        },
    )
    hint = fields.String(
        allow_none=True,
        metadata={"description": "Why `n` is 0 and what to do, in words; null when n > 0"},
    )
    reward_model = fields.Nested(_RewardModelSchema)
    policies = fields.Dict(keys=fields.String(), values=fields.Nested(_PolicyEstimateSchema))


@blp.route("/<uuid:config_id>/evaluation")
class Evaluation(MethodView):
    @blp.arguments(EvaluationQueryArgsSchema, location="query")
    @blp.response(200, EvaluationSchema)
    def get(self, args, config_id):
        """Get off-policy estimates

        How much reward per decision each policy would earn if it served everyone,
        estimated from the logged decisions (live and imported) with known propensities
        and rewards created in `from`..`to` (inclusive, UTC dates; default the last 30
        days, at most 366), the most recent `limit` of them. Policies: `model` (the
        newest model, exploration included), `model_greedy` (its top action only),
        `baseline` (the holdout baseline) and `logged` (whatever chose the logged
        actions). Each gets IPS, SNIPS and doubly robust (DR) estimates with 95%
        intervals (`ci_low`/`ci_high` are DR's) and the effective sample size `ess`:
        distrust estimates whose `ess` is small. When the range holds no evaluable
        decisions, `available` gives the dates that do (pass them as `from`/`to`, e.g.
        after importing older history) and `hint` says so. Formulas: docs/evaluation.md.
        """
        return evaluation.read(
            db_session(),
            current_principal(),
            config_id,
            date_from=args.get("from_"),
            date_to=args.get("to"),
            policies=args.get("policies"),
            limit=args["limit"],
        )
