"""The satisfaction survey (SC-003): the prompt every page may carry, and its report.

The prompt is a small panel at the top of the page (``_survey.html``, included by
``base.html``) once :func:`hpe_core.tenancy.survey.due` says so: a 1-5 scale, an optional
comment, *Send* and *Not now*. It is an ordinary form, so it works without JavaScript
(the answer posts, and the person lands back where they were after a thank-you); with
htmx it is answered in place. It never stands between a person and their work: every
page renders in full beneath it.

``/dashboard/admin/survey`` (admin role): the workspace's answers summarised by
:func:`hpe_core.tenancy.survey.report`, the same report as ``hpe survey report`` and
``GET /survey/report``.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for

from hpe_core.errors import Conflict, InvalidInput
from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import survey
from web.dashboard.sessions import current_person, requires, safe_next
from web.extensions import db_session


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/survey", "survey", survey_page, methods=["GET", "POST"])
    blueprint.add_url_rule("/survey/dismiss", "survey_dismiss", dismiss, methods=["POST"])
    blueprint.add_url_rule("/admin/survey", "admin_survey", report_page)
    blueprint.context_processor(_prompt_context)


def _prompt_context() -> dict:
    return {"survey_due": survey_due, "survey_here": here, "survey_scores": survey.SCORE_LABELS}


def survey_due() -> bool:
    """Whether this request's page carries the prompt (asked once per request)."""
    if "survey_due" not in g:
        person = current_person()
        g.survey_due = person is not None and survey.due(
            db_session(), person, after_days=_after_days()
        )
    return g.survey_due


def here() -> str:
    """Where the person is (the prompt's ``next``): this page, or the overview."""
    path = request.full_path.rstrip("?") if request.method == "GET" else request.path
    return path if safe_next(path) and not path.startswith("/dashboard/survey") else "/dashboard/"


@requires()
def survey_page():
    """The survey as a page of its own (where the prompt's form lands without JS)."""
    back = _back()
    if request.method == "GET":
        thanked = request.args.get("answered") == "yes"
        return _page(back, thanked=thanked)
    person, session = current_person(), db_session()
    form = {"score": request.form.get("score", ""), "comment": request.form.get("comment", "")}
    try:
        survey.answer(session, person, form["score"], form["comment"], after_days=_after_days())
    except InvalidInput as exc:
        session.rollback()
        errors = {f"survey-{name}": messages for name, messages in exc.errors.items()}
        if _htmx():
            return _fragment(form, errors, back)
        return _page(back, form=form, errors=errors), 422
    except Conflict:  # answered in another tab already
        session.rollback()
    else:
        session.commit()
    if _htmx():
        return render_template("_survey_thanks.html")
    return redirect(url_for("dashboard.survey", answered="yes", next=back))


@requires()
def dismiss():
    """ "Not now": asked again in 30 days; back to the page (the panel gone)."""
    session = db_session()
    survey.dismiss(session, current_person(), after_days=_after_days())
    session.commit()
    if _htmx():
        return ""
    return redirect(_back())


@requires(Role.ADMIN)
def report_page():
    session, person = db_session(), current_person()
    return render_template(
        "admin_survey.html",
        admin_tab="admin_survey",
        report=survey.report(session, person.workspace_id),
        comments=survey.recent_comments(session, person.workspace_id),
        labels=survey.SCORE_LABELS,
        after_days=_after_days(),
        satisfied=survey.SATISFIED,
    )


def _page(back: str, *, thanked: bool = False, form: dict | None = None, errors=None):
    return render_template(
        "survey.html",
        back=back,
        thanked=thanked,
        due=survey_due(),
        survey_form=form or {"score": "", "comment": ""},
        survey_errors=errors or {},
        survey_next=back,
    )


def _fragment(form: dict, errors: dict, back: str):
    return render_template("_survey.html", survey_form=form, survey_errors=errors, survey_next=back)


def _back() -> str:
    target = request.values.get("next") or ""
    return target if safe_next(target) and target.startswith("/dashboard/") else "/dashboard/"


def _htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def _after_days() -> int:
    return int(current_app.config["SURVEY_AFTER_DAYS"])
