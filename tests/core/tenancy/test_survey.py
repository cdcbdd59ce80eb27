"""The satisfaction survey (SC-003): when a person is asked, what is stored, the report.

The clock is the tests': every call gets ``now``, so the 30-day rules are checked to
the second, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from hpe_core.errors import Conflict, InvalidInput
from hpe_core.store.models import Activity, SurveyAnswer
from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import people, survey, workspaces

COST = 2**10
PASSWORD = "correct horse battery"
#: The first sign-in of every test's people.
T0 = dt.datetime(2026, 1, 10, 9, 30, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def db(session):
    workspaces.create_workspace(session, "acme")
    workspaces.create_workspace(session, "globex")
    session.commit()
    return session


def _person(db, email="ann@example.com", workspace="acme", role=Role.EDITOR, at=T0):
    """A person who first signed in at ``at`` (None: never signed in)."""
    people.create_user(
        db, email, workspace_id=workspace, role=role, password=PASSWORD, password_cost=COST
    )
    db.commit()
    if at is None:
        user = people.get_user(db, email)
        return people.resume(db, user.id, workspace, user.session_epoch)
    person = people.sign_in(db, email, PASSWORD, workspace_id=workspace, now=at, password_cost=COST)
    db.commit()
    return person


def _due(db, person, now, after_days=30):
    return survey.due(db, person, after_days=after_days, now=now)


def test_a_person_is_not_asked_before_the_days_have_passed(db):
    """Asked from exactly SURVEY_AFTER_DAYS after the first sign-in, not a second before."""
    ann = _person(db)
    assert not _due(db, ann, T0)
    assert not _due(db, ann, T0 + 30 * DAY - SECOND)
    assert _due(db, ann, T0 + 30 * DAY)
    assert _due(db, ann, T0 + 400 * DAY)


def test_the_days_are_a_setting(db):
    """With after_days=7 the first ask comes a week after the first sign-in; 0 at once."""
    ann = _person(db)
    assert not _due(db, ann, T0 + 7 * DAY - SECOND, after_days=7)
    assert _due(db, ann, T0 + 7 * DAY, after_days=7)
    assert _due(db, ann, T0, after_days=0)


def test_later_sign_ins_do_not_restart_the_clock(db):
    """The days count from the first sign-in, however often the person comes back."""
    ann = _person(db)
    people.sign_in(db, ann.email, PASSWORD, now=T0 + 29 * DAY, password_cost=COST)
    db.commit()
    assert _due(db, ann, T0 + 30 * DAY)


def test_someone_who_never_signed_in_is_not_asked(db):
    """No first sign-in, no use of the dashboard: nothing to ask about."""
    ann = _person(db, at=None)
    assert not _due(db, ann, T0 + 1000 * DAY)


def test_an_answer_is_stored_and_asks_again_after_30_days(db):
    """An answer (score, comment, workspace, time) stops the prompt for exactly 30 days."""
    ann = _person(db)
    answered_at = T0 + 31 * DAY
    row = survey.answer(db, ann, "4", "  Clear numbers.  ", after_days=30, now=answered_at)
    db.commit()
    stored = db.get(SurveyAnswer, row.id)
    assert (stored.user_id, stored.workspace_id, stored.score, stored.comment) == (
        ann.user_id,
        "acme",
        4,
        "Clear numbers.",
    )
    assert stored.created_at == answered_at
    assert not _due(db, ann, answered_at + 30 * DAY - SECOND)
    assert _due(db, ann, answered_at + 30 * DAY)


def test_dismissing_counts_as_asked(db):
    """ "Not now" is stored without a score and waits 30 days like an answer."""
    ann = _person(db)
    dismissed_at = T0 + 45 * DAY
    row = survey.dismiss(db, ann, after_days=30, now=dismissed_at)
    db.commit()
    assert row.score is None and row.comment == ""
    assert not _due(db, ann, dismissed_at + 29 * DAY)
    assert _due(db, ann, dismissed_at + 30 * DAY)


def test_asked_once_whichever_workspace_the_person_acts_in(db):
    """Answering in one workspace stops the prompt in the others; the answer is the
    workspace's it was given in."""
    ann = _person(db, role=Role.ADMIN)
    people.create_user(db, ann.email, workspace_id="globex", role=Role.VIEWER)
    db.commit()
    in_globex = people.switch_workspace(db, ann, "globex")
    now = T0 + 30 * DAY
    survey.answer(db, in_globex, 5, after_days=30, now=now)
    db.commit()
    assert not _due(db, ann, now + DAY)
    assert db.scalar(select(SurveyAnswer.workspace_id)) == "globex"


def test_answering_when_not_due_is_refused(db):
    """A second answer within 30 days (another tab, a resubmitted form) is a Conflict."""
    ann = _person(db)
    with pytest.raises(Conflict):
        survey.answer(db, ann, 4, after_days=30, now=T0 + DAY)
    survey.answer(db, ann, 4, after_days=30, now=T0 + 30 * DAY)
    db.commit()
    with pytest.raises(Conflict):
        survey.answer(db, ann, 5, after_days=30, now=T0 + 31 * DAY)


def test_dismissing_when_not_due_does_nothing(db):
    """ "Not now" with nothing to answer stores nothing (and so never delays the prompt)."""
    ann = _person(db)
    assert survey.dismiss(db, ann, after_days=30, now=T0 + DAY) is None
    db.commit()
    assert db.scalars(select(SurveyAnswer)).all() == []


@pytest.mark.parametrize("score", [None, "", "0", 6, "abc", "4.5", True, [4]])
def test_a_score_outside_1_to_5_is_refused_on_its_field(db, score):
    """No score, or anything but 1-5, is an InvalidInput on ``score``; nothing is stored."""
    ann = _person(db)
    with pytest.raises(InvalidInput) as refused:
        survey.answer(db, ann, score, after_days=30, now=T0 + 30 * DAY)
    assert set(refused.value.errors) == {"score"}


def test_a_comment_over_2000_characters_is_refused(db):
    """The optional comment is kept to 2,000 characters."""
    ann = _person(db)
    with pytest.raises(InvalidInput) as refused:
        survey.answer(db, ann, 3, "x" * 2001, after_days=30, now=T0 + 30 * DAY)
    assert set(refused.value.errors) == {"comment"}
    survey.answer(db, ann, 3, "x" * 2000, after_days=30, now=T0 + 30 * DAY)


def test_answers_and_dismissals_are_activities_of_the_person(db):
    """The activity log says who answered (with the score) and who dismissed, never the
    comment."""
    ann = _person(db)
    bob = _person(db, "bob@example.com")
    survey.answer(db, ann, 2, "private words", after_days=30, now=T0 + 30 * DAY)
    survey.dismiss(db, bob, after_days=30, now=T0 + 30 * DAY)
    db.commit()
    logged = {
        (row.type, row.actor, tuple(sorted(row.data.items())))
        for row in db.scalars(select(Activity).where(Activity.type.like("survey.%")))
    }
    assert logged == {
        (survey.ANSWERED, "user:ann@example.com", (("score", 2),)),
        (survey.DISMISSED, "user:bob@example.com", ()),
    }


def _answers(db, workspace, scored):
    """Store answers directly: [(email, score or None, when)]."""
    for email, score, when in scored:
        user = people.get_user(db, email)
        db.add(SurveyAnswer(user_id=user.id, workspace_id=workspace, score=score, created_at=when))
    db.commit()


def test_the_report_counts_means_distribution_share_and_months(db):
    """Count, people, mean, 1-5 distribution, share of 4+, per month; dismissals apart."""
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        _person(db, email)
    _person(db, "g@example.com", workspace="globex")
    jan, feb = (
        dt.datetime(2026, 1, 31, 23, 59, tzinfo=dt.UTC),
        dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
    )
    _answers(
        db,
        "acme",
        [
            ("a@example.com", 5, jan),
            ("b@example.com", 4, jan),
            ("c@example.com", 2, jan),
            ("a@example.com", 3, feb),
            ("b@example.com", None, feb),
        ],
    )
    _answers(db, "globex", [("g@example.com", 1, feb)])
    report = survey.report(db, "acme")
    assert (report.answers, report.people, report.dismissals) == (4, 3, 1)
    assert report.mean == pytest.approx(3.5)
    assert report.distribution == {1: 0, 2: 1, 3: 1, 4: 1, 5: 1}
    assert (report.satisfied, report.share_satisfied) == (2, 0.5)
    assert [(m.month, m.answers, m.mean, m.satisfied) for m in report.by_month] == [
        ("2026-01", 3, pytest.approx(11 / 3), 2),
        ("2026-02", 1, 3.0, 0),
    ]
    assert report.by_month[0].share_satisfied == pytest.approx(2 / 3)
    assert report.meets_target is False
    everyone = survey.report(db)
    assert (everyone.workspace_id, everyone.answers, everyone.distribution[1]) == (None, 5, 1)


def test_the_report_gives_intervals_that_hold_their_estimates(db):
    """The mean's 95% interval (normal) and the share's (Wilson) contain the estimate,
    stay within the scale, and are None when they cannot be computed."""
    _person(db, "a@example.com")
    when = T0 + 40 * DAY
    _answers(db, "acme", [("a@example.com", 5, when)])
    single = survey.report(db, "acme")
    assert single.mean_interval is None and single.share_interval is not None
    assert single.share_interval.low < 1.0 == single.share_interval.high
    _answers(db, "acme", [("a@example.com", score, when) for score in (4, 4, 5, 3, 5, 4, 2, 5)])
    report = survey.report(db, "acme")
    assert 1 <= report.mean_interval.low < report.mean < report.mean_interval.high <= 5
    assert report.share_interval.low < report.share_satisfied < report.share_interval.high
    # Wilson's interval for 7 of 9 (a textbook value): 0.453 to 0.937.
    assert (report.satisfied, report.answers) == (7, 9)
    assert report.share_interval.low == pytest.approx(0.453, abs=0.001)
    assert report.share_interval.high == pytest.approx(0.937, abs=0.001)


def test_an_empty_report_says_nothing_was_measured(db):
    """No answers: counts are zero, every estimate None, no month, target unknown."""
    report = survey.report(db, "acme")
    assert (report.answers, report.mean, report.share_satisfied, report.by_month) == (
        0,
        None,
        None,
        [],
    )
    assert report.meets_target is None
    assert report.as_dict()["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}


def test_recent_comments_are_the_workspaces_newest_first(db):
    """Comments of answers (not empty ones, not dismissals), newest first, this workspace's."""
    ann = _person(db, role=Role.ADMIN)
    survey.answer(db, ann, 4, "first", after_days=30, now=T0 + 30 * DAY)
    survey.answer(db, ann, 2, "", after_days=30, now=T0 + 60 * DAY)
    survey.answer(db, ann, 5, "third", after_days=30, now=T0 + 90 * DAY)
    db.commit()
    assert survey.recent_comments(db, "acme") == [
        (T0 + 90 * DAY, 5, "third"),
        (T0 + 30 * DAY, 4, "first"),
    ]
    assert survey.recent_comments(db, "globex") == []


def test_the_verdict_says_whether_the_target_is_met_with_its_uncertainty(db):
    """met: the mean's interval is all at 4+; missed: all below; unclear: it spans 4 or
    there is one answer; None with no answer. meets_target reads the mean alone."""
    _person(db, "a@example.com")

    def verdict_of(scores):
        db.query(SurveyAnswer).delete()
        _answers(db, "acme", [("a@example.com", score, T0) for score in scores])
        report = survey.report(db, "acme")
        return report.verdict, report.meets_target

    assert verdict_of([]) == (None, None)
    assert verdict_of([5]) == ("unclear", True)
    assert verdict_of([5, 4] * 10) == ("met", True)
    assert verdict_of([2, 3] * 10) == ("missed", False)
    assert verdict_of([3, 4, 5, 4]) == ("unclear", True)
