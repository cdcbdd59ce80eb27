"""Creating and editing configurations in the browser, trying them out, and running them.

``/dashboard/configs/new`` and ``/dashboard/configs/<id>/edit`` are one form over every
settings block (:mod:`web.dashboard.config_form`), with a JSON view of the same settings
for power users. Saving goes through the same services as ``POST /`` and ``PATCH /{id}``
(:mod:`hpe_core.tenancy.configs`), so the validation, the defaults and the activity log are
the API's; errors come back beside their fields. The edit page also has "Try it": a dry
run of a decision for a context you type (:meth:`DecisionEngine.try_out`).
"""

from __future__ import annotations

import json
import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for

from hpe_core.decide.decisions import DecisionRequest
from hpe_core.errors import Conflict, InvalidInput
from hpe_core.store.vocabulary import ConfigStatus, Role
from hpe_core.tenancy import configs
from hpe_core.tenancy.merge_patch import make_merge_patch
from hpe_core.tenancy.settings import validate_settings
from web.dashboard import config_form
from web.dashboard.sessions import current_person, requires
from web.extensions import app_runtime, catalog, db_session

#: What a new configuration's first offer is called until its author names it.
_PLACEHOLDER_ID = "offer-1"


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/configs/new", "new_config", new_config, methods=["GET", "POST"])
    blueprint.add_url_rule(
        "/configs/<uuid:config_id>/edit", "edit_config", edit_config, methods=["GET", "POST"]
    )
    blueprint.add_url_rule(
        "/configs/<uuid:config_id>/try", "try_config", try_config, methods=["POST"]
    )
    blueprint.add_url_rule(
        "/configs/<uuid:config_id>/status", "config_status", set_status, methods=["POST"]
    )
    blueprint.add_url_rule(
        "/configs/<uuid:config_id>/duplicate", "duplicate_config", duplicate, methods=["POST"]
    )


@requires(Role.EDITOR)
def new_config():
    if request.method == "GET":
        document = validate_settings(
            {"actions": [{"id": _PLACEHOLDER_ID}]}, channels=catalog().channels
        )
        draft = config_form.draft_from_settings(document)
        draft["actions"][0] = config_form.new_row("actions")
        return _form_page(None, "", draft, {}, document)
    return _submitted(None)


@requires(Role.EDITOR)
def edit_config(config_id: uuid.UUID):
    config = configs.get(db_session(), current_person().principal(), config_id)
    if request.method == "GET":
        draft = config_form.draft_from_settings(config.settings)
        return _form_page(config, config.name, draft, {}, config.settings)
    return _submitted(config)


def _submitted(config):
    """A POST of the form: a list edit (re-render), or a save (guided fields or JSON)."""
    name = request.form.get("name", "")
    draft = config_form.draft_from_form(request.form)
    op = request.form.get("op", "")
    if op:
        return _form_page(config, name, config_form.change(draft, op), {}, None)
    if request.form.get("mode") == "json":
        try:
            settings = json.loads(request.form.get("settings_json") or "null")
        except ValueError as exc:
            errors = {"settings_json": [f"Not JSON: {exc}"]}
            return _form_page(config, name, draft, errors, None, json_open=True), 422
        return _save(config, name, settings, draft, from_json=True)
    return _save(config, name, config_form.settings_from_draft(draft), draft)


def _save(config, name: str, settings, draft: dict, *, from_json: bool = False):
    session = db_session()
    principal = current_person().principal()
    try:
        if config is None:
            saved = configs.create(session, principal, catalog(), name=name, settings=settings)
        else:
            # The JSON view is a PATCH (a merge patch, exactly as the API takes it); the
            # guided form holds the whole document, so only what changed is patched.
            patch = settings if from_json else make_merge_patch(config.settings, settings)
            saved = configs.update(
                session, principal, catalog(), config.id, name=name, settings_patch=patch
            )
    except InvalidInput as exc:
        session.rollback()
        errors = config_form.field_errors(exc.errors)
        if from_json:  # the guided fields were not used: say it all beside the JSON
            errors = config_form.json_errors(errors)
        return _form_page(config, name, draft, errors, None, json_open=from_json), 422
    session.commit()
    app_runtime().decisions.invalidate(saved.id)
    flash("Configuration created." if config is None else "Changes saved.")
    return redirect(url_for("dashboard.edit_config", config_id=saved.id))


def _form_page(config, name, draft, errors, document, *, json_open=False, trial=None):
    settings_json = request.form.get("settings_json") if request.method == "POST" else None
    if settings_json is None:
        shown = document if document is not None else config_form.settings_from_draft(draft)
        settings_json = json.dumps(shown, indent=2, sort_keys=True)
    return render_template(
        "config_form.html",
        config=config,
        name=name,
        draft=draft,
        errors=errors,
        settings_json=settings_json,
        json_open=json_open or any(key.startswith("settings_json") for key in errors),
        channels=catalog().channels,
        attribution_models=catalog().attribution_models,
        choices=config_form.CHOICES,
        trial=trial,
        trial_form=request.form if trial is not None else {},
    )


@requires(Role.EDITOR)
def try_config(config_id: uuid.UUID):
    """A dry run of the saved configuration for the context in the "Try it" form."""
    person = current_person()
    session = db_session()
    config = configs.get(session, person.principal(), config_id)
    trial = {"error": None, "found": None}
    try:
        context = json.loads(request.form.get("context") or "{}")
        if not isinstance(context, dict):
            raise ValueError("the context must be a JSON object")
        trial["found"] = app_runtime().decisions.try_out(
            session,
            person.principal(),
            config.id,
            DecisionRequest(
                user_id=request.form.get("user_id") or "someone",
                channel=request.form.get("channel") or "",
                context=context,
            ),
        )
    except ValueError as exc:
        trial["error"] = f"Context: {exc}"
    except (InvalidInput, Conflict) as exc:
        trial["error"] = exc.message
    draft = config_form.draft_from_settings(config.settings)
    return _form_page(config, config.name, draft, {}, config.settings, trial=trial)


@requires(Role.EDITOR)
def set_status(config_id: uuid.UUID):
    """Pause, resume (the kill switch) or deactivate; the page asked for a confirmation."""
    status = request.form.get("status", "")
    session = db_session()
    principal = current_person().principal()
    if status == ConfigStatus.INACTIVE:
        configs.deactivate(session, principal, config_id)
    else:
        configs.update(session, principal, catalog(), config_id, status=status)
    session.commit()
    app_runtime().decisions.invalidate(config_id)
    flash(
        {
            ConfigStatus.ACTIVE: "Resumed: decisions are made again.",
            ConfigStatus.PAUSED: "Paused: every decision request now answers 409.",
            ConfigStatus.INACTIVE: "Deactivated: no more decisions; the history stays.",
        }.get(status, "Status changed.")
    )
    return redirect(url_for("dashboard.results", config_id=config_id))


@requires(Role.EDITOR)
def duplicate(config_id: uuid.UUID):
    """A paused copy with the same settings, opened for editing."""
    session = db_session()
    principal = current_person().principal()
    original = configs.get(session, principal, config_id)
    copy = configs.create(
        session,
        principal,
        catalog(),
        name=f"Copy of {original.name}"[: configs.MAX_NAME_LENGTH],
        settings=original.settings,
        status=ConfigStatus.PAUSED,
    )
    session.commit()
    flash("Duplicated as a paused copy: review it, then resume it from its results page.")
    return redirect(url_for("dashboard.edit_config", config_id=copy.id))
