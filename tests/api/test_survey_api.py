"""GET /survey/report: the satisfaction survey's report for the key's workspace."""

from __future__ import annotations

import datetime as dt

from hpe_core.store.models import SurveyAnswer
from hpe_core.tenancy import people, survey
from tests.api.conftest import assert_error
from tests.conftest import BASE

URL = f"{BASE}/survey/report"


def _answers(session, workspace_id, scores, when=dt.datetime(2026, 4, 2, tzinfo=dt.UTC)):
    for index, score in enumerate(scores):
        user, _password = people.create_user(
            session, f"p{index}-{workspace_id}@example.com", workspace_id=workspace_id
        )
        session.add(
            SurveyAnswer(user_id=user.id, workspace_id=workspace_id, score=score, created_at=when)
        )
    session.commit()


def test_the_report_is_the_services_for_the_keys_workspace(client, session, make_tenant):
    """The answer is survey.report of the key's workspace, dumped as is; other workspaces'
    answers are not in it."""
    acme, globex = make_tenant("acme"), make_tenant("globex")
    _answers(session, "acme", [5, 4, 4, 2])
    _answers(session, "globex", [1, 1])
    answer = client.get(URL, headers=acme.headers)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body == survey.report(session, "acme").as_dict()
    assert (body["answers"], body["mean"], body["satisfied"], body["share_satisfied"]) == (
        4,
        3.75,
        3,
        0.75,
    )
    assert body["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 2, "5": 1}
    assert body["by_month"] == [
        {"month": "2026-04", "answers": 4, "mean": 3.75, "satisfied": 3, "share_satisfied": 0.75}
    ]
    assert body["meets_target"] is False
    assert 0 < body["share_interval"]["low"] < 0.75 < body["share_interval"]["high"] <= 1
    assert client.get(URL, headers=globex.headers).get_json()["answers"] == 2


def test_an_empty_report_has_nulls_not_zeros(client, make_tenant):
    """Nothing measured yet: counts are 0 and every estimate is null."""
    body = client.get(URL, headers=make_tenant("acme").headers).get_json()
    assert body["answers"] == 0
    assert body["mean"] is body["mean_interval"] is body["share_satisfied"] is None
    assert body["meets_target"] is None and body["by_month"] == []


def test_the_report_needs_a_secret_key(client, make_tenant):
    """No key: 401; a publishable key (it sits in web pages): 403."""
    assert_error(client.get(URL), 401)
    assert_error(client.get(URL, headers=make_tenant("acme", "publishable").headers), 403)


def test_the_endpoint_is_documented_in_openapi(client):
    """The OpenAPI document lists GET /survey/report with its response schema."""
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"][URL]["get"]
    assert operation["summary"] == "Read the satisfaction survey's report"
    assert "SurveyReport" in document["components"]["schemas"]
