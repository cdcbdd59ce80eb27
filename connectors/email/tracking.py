"""Tracking endpoints the email connector's messages point at (a plain Flask blueprint,
registered through ``hpe_register_blueprints``; not part of the REST API document):

- ``GET /t/c/<token>``: a tracked click: records ``click`` and redirects to the action's
  configured link (never to a URL taken from the request);
- ``GET /t/o/<token>.gif``: the open pixel: records ``open``;
- ``GET|POST /t/u/<token>``: unsubscribe (RFC 8058 one-click POST; GET shows a button,
  so link scanners that prefetch URLs do not unsubscribe anyone).

Recording is best effort: a click still redirects if the database is down.
"""

from __future__ import annotations

import base64
import logging
import uuid

from flask import Blueprint, Response, redirect, request
from werkzeug.exceptions import NotFound

from hpe_core.decide import consent
from hpe_core.errors import InvalidInput
from hpe_core.events import notify
from hpe_core.learn import outcomes
from hpe_core.store.models import Config, Decision
from hpe_core.store.vocabulary import ConsentStatus
from hpe_core.tenancy.configs import settings_of
from hpe_core.tenancy.workspaces import Principal
from plugins.app_runtime import app_runtime

log = logging.getLogger(__name__)

blp = Blueprint("email_tracking", __name__)

_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_NO_STORE = {"Cache-Control": "no-store, max-age=0", "Referrer-Policy": "no-referrer"}


def _verify(kind: str, token: str) -> tuple[uuid.UUID, str | None]:
    links = app_runtime().channels["email"].runtime.links
    try:
        return links.verify(kind, token)
    except InvalidInput as exc:
        raise NotFound("Unknown or altered tracking link.") from exc


def _record(decision: Decision, event_type: str) -> None:
    """Store one outcome of a decision (single-shot: decision + type) and notify sinks."""
    session = app_runtime().sessions()
    event = outcomes.OutcomeEvent(type=event_type, decision_id=decision.id)
    try:
        principal = Principal(workspace_id=decision.workspace_id, actor="tracking")
        outcomes.record(session, principal, decision.config_id, [event], source="tracking")
        session.commit()
    except Exception:  # noqa: BLE001 - the person clicking must still get where they go
        session.rollback()
        log.exception("could not record %s for decision %s", event_type, decision.id)
        return
    finally:
        session.close()
    notify(
        app_runtime().pm.hook.hpe_on_outcomes,
        workspace_id=decision.workspace_id,
        config_id=decision.config_id,
        outcomes=[event],
        source="tracking",
    )


def _decision(decision_id: uuid.UUID) -> tuple[Decision, Config]:
    """The email decision a link names (only email decisions have these links: an
    unsubscribe must never withdraw email consent through another channel's decision).

    :raises NotFound: no such decision, or not an email decision
    """
    session = app_runtime().sessions()
    try:
        decision = session.get(Decision, decision_id)
        config = session.get(Config, decision.config_id) if decision is not None else None
    finally:
        session.close()
    if decision is None or config is None or decision.channel != "email":
        raise NotFound("This link's decision no longer exists.")
    return decision, config


@blp.get("/t/c/<token>")
def click(token: str):
    decision_id, link = _verify("click", token)
    decision, config = _decision(decision_id)
    action = settings_of(config).actions_by_id.get(decision.action_id)
    email = action.content.get("email") if action is not None else None
    target = ((email or {}).get("links") or {}).get(link)
    if not target:
        raise NotFound("This link is no longer part of the message's offer.")
    _record(decision, "click")
    response = redirect(target, code=302)
    response.headers.update(_NO_STORE)
    return response


@blp.get("/t/o/<token>.gif")
def open_pixel(token: str):
    decision_id, _ = _verify("open", token)
    decision, _config = _decision(decision_id)
    _record(decision, "open")
    return Response(_PIXEL, mimetype="image/gif", headers=_NO_STORE)


_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width">
<title>{title}</title><body style="font-family:sans-serif;max-width:32em;margin:4em auto">
<h1>{title}</h1>{body}</body></html>"""


@blp.route("/t/u/<token>", methods=["GET", "POST"])
def unsubscribe(token: str):
    decision_id, _ = _verify("unsubscribe", token)
    decision, _config = _decision(decision_id)
    if request.method == "GET":
        form = (
            '<form method="post"><p>Stop receiving these emails?</p>'
            '<button type="submit">Unsubscribe</button></form>'
        )
        return Response(_PAGE.format(title="Unsubscribe", body=form), headers=_NO_STORE)
    session = app_runtime().sessions()
    try:
        changed = consent.set_status(
            session,
            workspace_id=decision.workspace_id,
            channel="email",
            user_id=decision.user_id,
            status=ConsentStatus.UNSUBSCRIBED,
            source="tracking:unsubscribe",
            config_id=decision.config_id,
        )
        session.commit()
    finally:
        session.close()
    _record(decision, "unsubscribe")
    if changed:
        notify(
            app_runtime().pm.hook.hpe_on_consent_changed,
            workspace_id=decision.workspace_id,
            channel="email",
            user_id=decision.user_id,
            status=ConsentStatus.UNSUBSCRIBED,
            source="tracking:unsubscribe",
        )
    body = "<p>You will not receive these emails any more.</p>"
    return Response(_PAGE.format(title="Unsubscribed", body=body), headers=_NO_STORE)
