"""``hpe survey report``: the satisfaction survey's report at the command line."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from hpe_core.store import db as hpe_db
from hpe_core.store.models import SurveyAnswer
from hpe_core.tenancy import people, survey, workspaces
from tests.cli.test_cli import hpe


@pytest.fixture(scope="module")
def answered(tmp_path_factory):
    """A migrated SQLite database with answers in two workspaces."""
    path = tmp_path_factory.mktemp("survey")
    url = f"sqlite:///{path / 'hpe.db'}"
    engine = hpe_db.make_engine(url)
    hpe_db.upgrade(engine)
    sessions = hpe_db.make_session_factory(engine)
    with sessions() as session:
        for workspace_id, scores in (("acme", [5, 4, 2]), ("globex", [1])):
            workspaces.create_workspace(session, workspace_id)
            for index, score in enumerate(scores):
                user, _ = people.create_user(
                    session, f"p{index}@{workspace_id}.example", workspace_id=workspace_id
                )
                session.add(
                    SurveyAnswer(
                        user_id=user.id,
                        workspace_id=workspace_id,
                        score=score,
                        created_at=dt.datetime(2026, 5, 3 + index, tzinfo=dt.UTC),
                    )
                )
        session.commit()
        expected = survey.report(session, "acme").as_dict()
    engine.dispose()
    return path, url, expected


def test_survey_report_prints_the_workspaces_numbers(answered):
    """Mean, share of 4 or 5, distribution and months of one workspace, in words and tabs."""
    path, url, _expected = answered
    output = hpe(path, "survey", "report", "--workspace", "acme", database_url=url).stdout
    assert "mean 3.67 / 5 (95% interval 1.94-5.00): around SC-003's target of 4" in output
    assert "2 of 3 answers gave 4 or 5 (67%), from 3 people; 0 'not now'" in output
    lines = output.splitlines()
    scores = lines.index("score\tanswers")
    assert lines[scores + 1 : scores + 6] == ["1\t0", "2\t1", "3\t0", "4\t1", "5\t1"]
    assert lines[-1] == "2026-05\t3\t3.67\t67%"


def test_survey_report_as_json_is_the_apis_shape(answered):
    """--json prints the same document as GET /survey/report; no --workspace: all of them."""
    path, url, expected = answered
    output = hpe(path, "survey", "report", "--workspace", "acme", "--json", database_url=url)
    assert json.loads(output.stdout) == expected
    everyone = json.loads(hpe(path, "survey", "report", "--json", database_url=url).stdout)
    assert (everyone["workspace_id"], everyone["answers"]) == (None, 4)


def test_survey_report_of_an_unknown_workspace_fails_cleanly(answered):
    """A workspace that does not exist is a one-line error, not an empty report."""
    path, url, _expected = answered
    result = hpe(path, "survey", "report", "--workspace", "nope", database_url=url, check=False)
    assert result.returncode != 0 and "No workspace nope" in result.stderr
    assert "Traceback" not in result.stderr
