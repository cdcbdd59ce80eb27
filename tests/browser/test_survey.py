"""The satisfaction survey (SC-003) in a real browser: when the prompt shows, answering it
in place (htmx) and without JavaScript, "Not now", and the admin's report.

The clock is controlled through the database: a person's first sign-in and their last
answer are moved back in time, which is exactly what the timing rules read.
"""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from hpe_core.store.models import SurveyAnswer, User
from hpe_core.store.vocabulary import Role
from tests.browser.conftest import assert_accessible, shoot, sign_in, wait_ready
from web.extensions import app_runtime

pytestmark = pytest.mark.slow


def _first_signed_in(app, email: str, days_ago: float) -> None:
    with app_runtime(app).sessions() as session:
        session.execute(
            update(User)
            .where(User.email == email)
            .values(first_sign_in_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago))
        )
        session.commit()


def _answers_of(app, email: str) -> list[SurveyAnswer]:
    with app_runtime(app).sessions() as session:
        user = session.scalar(select(User).where(User.email == email))
        return list(
            session.scalars(
                select(SurveyAnswer)
                .where(SurveyAnswer.user_id == user.id)
                .order_by(SurveyAnswer.created_at)
            )
        )


def _asked_days_ago(app, email: str, days: float) -> None:
    """Move the person's answers (and dismissals) back in time."""
    with app_runtime(app).sessions() as session:
        user = session.scalar(select(User).where(User.email == email))
        session.execute(
            update(SurveyAnswer)
            .where(SurveyAnswer.user_id == user.id)
            .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=days))
        )
        session.commit()


def test_the_prompt_waits_30_days_and_is_answered_in_place(page, live_app, live_server, team):
    """Day 29: no prompt. Day 30: on the page, above the work; answered in place with a
    comment; gone on the next page; back 30 days later."""
    team.person("ed@example.com", Role.EDITOR)
    sign_in(page, live_server, "ed@example.com")
    wait_ready(page)  # the sign-in's redirect has landed: a reload during it fails
    _first_signed_in(live_app, "ed@example.com", 29.9)
    page.reload()
    wait_ready(page)
    expect(page.get_by_test_id("survey")).to_have_count(0)
    _first_signed_in(live_app, "ed@example.com", 30)
    page.reload()
    wait_ready(page)
    prompt = page.get_by_test_id("survey")
    expect(prompt).to_be_visible()
    expect(page.get_by_role("heading", name="Configurations")).to_be_visible()  # never blocks
    shoot(page, "survey-prompt")
    assert_accessible(page)
    prompt.get_by_label("4 Satisfied").check()
    prompt.get_by_text("Add a comment (optional)").click()
    prompt.get_by_label("What would make HPE better for you?").fill("More channels, please.")
    prompt.get_by_test_id("survey-send").click()
    expect(page.get_by_test_id("survey-thanks")).to_contain_text("Thank you.")
    expect(page).to_have_url(f"{live_server}/dashboard/")  # answered in place
    shoot(page, "survey-thanks-in-place")
    assert_accessible(page)
    [answer] = _answers_of(live_app, "ed@example.com")
    assert (answer.score, answer.comment, answer.workspace_id) == (
        4,
        "More channels, please.",
        "acme",
    )
    page.reload()
    expect(page.get_by_test_id("survey")).to_have_count(0)
    _asked_days_ago(live_app, "ed@example.com", 29.9)
    page.reload()
    expect(page.get_by_test_id("survey")).to_have_count(0)
    _asked_days_ago(live_app, "ed@example.com", 30)
    page.reload()
    expect(page.get_by_test_id("survey")).to_be_visible()


def test_not_now_counts_as_asked(page, live_app, live_server, team):
    """ "Not now" removes the prompt at once, stores a dismissal, and the prompt stays away
    for 30 days."""
    team.person("vi@example.com", Role.VIEWER)
    sign_in(page, live_server, "vi@example.com")
    _first_signed_in(live_app, "vi@example.com", 45)
    page.reload()
    page.get_by_test_id("survey").get_by_test_id("survey-dismiss").click()
    expect(page.get_by_test_id("survey")).to_have_count(0)
    [dismissal] = _answers_of(live_app, "vi@example.com")
    assert dismissal.score is None
    page.reload()
    expect(page.get_by_test_id("survey")).to_have_count(0)
    _asked_days_ago(live_app, "vi@example.com", 30)
    page.reload()
    expect(page.get_by_test_id("survey")).to_be_visible()


def test_the_survey_works_without_javascript(browser, live_app, live_server, team):
    """With JavaScript off: a missing score is flagged beside the scale on a page of its
    own; a score then says thank you and leads back to where the person was."""
    team.person("nojs@example.com", Role.EDITOR)
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1366, "height": 900}
    )
    page = context.new_page()
    try:
        sign_in(page, live_server, "nojs@example.com")
        _first_signed_in(live_app, "nojs@example.com", 31)
        page.goto(f"{live_server}/dashboard/?sort=name")
        prompt = page.get_by_test_id("survey")
        prompt.get_by_test_id("survey-send").click()
        expect(page).to_have_url(f"{live_server}/dashboard/survey")
        error = page.get_by_test_id("field-error")
        expect(error).to_have_text("Choose how satisfied you are, from 1 to 5.")
        expect(page.get_by_test_id("error-summary")).to_be_visible()
        shoot(page, "survey-error-no-js")
        page.get_by_test_id("survey").get_by_label("5 Very satisfied").check()
        page.get_by_test_id("survey").get_by_test_id("survey-send").click()
        expect(page.get_by_test_id("survey-thanks")).to_be_visible()
        shoot(page, "survey-thanks-no-js")
        page.get_by_test_id("survey-back").click()
        expect(page).to_have_url(f"{live_server}/dashboard/?sort=name")
        expect(page.get_by_test_id("survey")).to_have_count(0)
        assert [a.score for a in _answers_of(live_app, "nojs@example.com")] == [5]
    finally:
        context.close()


def test_admins_read_the_report_and_the_overview_summary(page, live_app, live_server, team):
    """The report page: mean, share of 4 or 5 with counts, distribution, months,
    comments; the overview shows admins the mean and share; axe-clean, empty or not."""
    team.person("boss@example.com", Role.ADMIN)
    sign_in(page, live_server, "boss@example.com")
    page.goto(f"{live_server}/dashboard/admin/survey")
    wait_ready(page)
    expect(page.get_by_test_id("survey-empty")).to_be_visible()
    shoot(page, "admin-survey-empty")
    assert_accessible(page)
    now = dt.datetime.now(dt.UTC)
    with app_runtime(live_app).sessions() as session:
        boss = session.scalar(select(User).where(User.email == "boss@example.com"))
        for days, score, comment in (
            (40, 3, "Took a while to set up."),
            (35, 4, ""),
            (5, 5, "The lift chart sold it to my manager."),
            (2, 4, ""),
            (1, None, ""),
        ):
            session.add(
                SurveyAnswer(
                    user_id=boss.id,
                    workspace_id="acme",
                    score=score,
                    comment=comment,
                    created_at=now - dt.timedelta(days=days),
                )
            )
        session.commit()
    page.reload()
    wait_ready(page)
    expect(page.get_by_test_id("survey-mean")).to_contain_text("4.00")
    expect(page.get_by_test_id("survey-verdict")).to_contain_text("Unclear against the target of 4")
    expect(page.get_by_test_id("survey-share")).to_contain_text("75%")
    expect(page.get_by_test_id("survey-share")).to_contain_text("3 of 4 answers")
    expect(page.get_by_test_id("survey-count")).to_contain_text("1 “not now”")
    expect(page.get_by_test_id("survey-comments")).to_contain_text("sold it to my manager")
    expect(page.get_by_test_id("survey-month")).not_to_have_count(0)
    shoot(page, "admin-survey")
    assert_accessible(page)
    page.get_by_role("link", name="Configurations").click()
    summary = page.get_by_test_id("survey-summary")
    expect(summary).to_contain_text("4.0 / 5")
    expect(summary).to_contain_text("75% gave 4 or 5 (3 / 4)")
