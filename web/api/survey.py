"""The satisfaction survey's report (SC-003), for the key's workspace."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from hpe_core.tenancy import survey
from web.api import BASE
from web.auth import current_principal, require_secret_key
from web.extensions import db_session

blp = Blueprint("survey", __name__, url_prefix=BASE, description="Satisfaction survey")
blp.before_request(require_secret_key)


class IntervalSchema(Schema):
    low = fields.Float()
    high = fields.Float()


class SurveyMonthSchema(Schema):
    month = fields.String(metadata={"description": "YYYY-MM (UTC)", "example": "2026-05"})
    answers = fields.Integer()
    mean = fields.Float()
    satisfied = fields.Integer(metadata={"description": "Answers of 4 or 5"})
    share_satisfied = fields.Float()


class SurveyReportSchema(Schema):
    workspace_id = fields.String()
    answers = fields.Integer(metadata={"description": "Answers with a score (1-5)"})
    people = fields.Integer(metadata={"description": "Different people who answered"})
    dismissals = fields.Integer(metadata={"description": "Times someone chose 'Not now'"})
    mean = fields.Float(allow_none=True, metadata={"description": "Mean score; null: no answer"})
    mean_interval = fields.Nested(
        IntervalSchema,
        allow_none=True,
        metadata={"description": "95% interval of the mean (null under 2 answers)"},
    )
    distribution = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={
            "description": "Answers per score, '1' to '5'",
            "example": {"1": 0, "2": 1, "3": 2, "4": 5, "5": 4},
        },
    )
    satisfied = fields.Integer(metadata={"description": "Answers of 4 or 5"})
    share_satisfied = fields.Float(allow_none=True, metadata={"description": "satisfied / answers"})
    share_interval = fields.Nested(
        IntervalSchema, allow_none=True, metadata={"description": "95% Wilson interval"}
    )
    by_month = fields.List(fields.Nested(SurveyMonthSchema))
    meets_target = fields.Boolean(
        allow_none=True,
        metadata={"description": "SC-003: the mean is 4 or more (null: no answer yet)"},
    )
    verdict = fields.String(
        allow_none=True,
        metadata={
            "description": "met: the mean's whole 95% interval is at 4 or above; missed: all "
            "of it is below 4; unclear: it spans 4 (or one answer, no interval); null: no "
            "answer yet"
        },
    )


@blp.route("/survey/report")
class SurveyReport(MethodView):
    @blp.response(200, SurveyReportSchema)
    def get(self):
        """Read the satisfaction survey's report

        SC-003 asks for a satisfaction score of 4 or more out of 5. The dashboard asks each
        person "How satisfied are you with HPE so far?" (1-5, with an optional comment)
        `HPE_SURVEY_AFTER_DAYS` days after their first sign-in, then at most once every 30
        days. This is every answer of the key's workspace: how many, the mean with its
        interval, the share of 4 or 5, the distribution and each month's answers. Comments
        are only shown to admins in the dashboard.
        """
        return survey.report(db_session(), current_principal().workspace_id).as_dict()
