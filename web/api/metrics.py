"""Performance metrics of a configuration."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from hpe_core.measure import metrics
from web.api import BASE
from web.api.schemas import MetricsQueryArgsSchema, MetricsSchema
from web.auth import current_principal, require_secret_key
from web.extensions import app_runtime, db_session

blp = Blueprint("metrics", __name__, url_prefix=BASE, description="Metrics")
blp.before_request(require_secret_key)


@blp.route("/<uuid:config_id>/metrics")
class Metrics(MethodView):
    @blp.arguments(MetricsQueryArgsSchema, location="query")
    @blp.response(200, MetricsSchema)
    def get(self, args, config_id):
        """Get performance metrics

        Treatment vs holdout decisions, engagements, engagement rates and lift (with a
        95% interval and p-value), reward, revenue, cost, incremental revenue and ROI
        (with 95% intervals), the sample-ratio check and the power planner, per channel,
        action and segment too, over `from`..`to` (inclusive, UTC dates; default the last
        30 days, at most 366), plus one entry per day with data. Past days come from the
        daily rollups (`rolled_up_at`); today and days not rolled up yet are computed
        live, so the numbers are the same either way.
        """
        return metrics.read(
            db_session(),
            current_principal(),
            config_id,
            date_from=args.get("from_"),
            date_to=args.get("to"),
            channel_costs=app_runtime().measurement.channel_costs,
        )
