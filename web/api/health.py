"""Health check for load balancers and operators (no API key)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import text

from hpe_core import __version__
from hpe_core.measure import health
from hpe_core.store.models import utcnow
from web.extensions import app_runtime, db_session

blp = Blueprint("health", __name__, url_prefix="/api/v1", description="Health")


class HealthSchema(Schema):
    status = fields.String(metadata={"description": "ok, degraded (Redis down) or down"})
    version = fields.String()
    database = fields.String()
    redis = fields.String(metadata={"description": "ok, unavailable or not configured"})
    learning = fields.String(
        metadata={
            "description": "ok, or lagging: a closed reward window has waited longer than "
            "10 minutes to be learned (a stalled worker; docs/operations.md)"
        }
    )
    learning_lag_seconds = fields.Float(
        allow_none=True,
        metadata={
            "description": "Seconds the oldest closed reward window not learned yet has "
            "waited, over every configuration (null: none waits)"
        },
    )


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="The database does not answer")
    @blp.doc(security=[])
    def get(self):
        """Check health

        `database` must answer for decisions to be logged (503 otherwise). Redis only
        carries learning jobs: when it is down, decisions and outcomes are still served
        and stored, and learning catches up once it is back (`degraded`).
        `learning_lag_seconds` is how long the oldest closed reward window not learned yet
        has waited; over 10 minutes, `learning` is `lagging` and the status `degraded`
        (a stalled or missing worker).
        """
        report = {"version": __version__, "database": "ok", "redis": "not configured"}
        try:
            session = db_session()
            session.execute(text("SELECT 1"))
            lag = health.oldest_learning_lag(session, utcnow())
            report["learning_lag_seconds"] = None if lag is None else round(lag.total_seconds(), 3)
            report["learning"] = "lagging" if lag is not None and lag > health.LAG_ALARM else "ok"
        except Exception:  # noqa: BLE001 - any failure means the same to a load balancer
            report["database"] = "unavailable"
        backend = app_runtime().jobs
        if backend.name == "rq":
            try:
                backend.redis.ping()
                report["redis"] = "ok"
            except Exception:  # noqa: BLE001
                report["redis"] = "unavailable"
        if report["database"] != "ok":
            return {**report, "status": "down"}, 503
        degraded = report["redis"] == "unavailable" or report["learning"] == "lagging"
        report["status"] = "degraded" if degraded else "ok"
        return report
