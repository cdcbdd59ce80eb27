"""SendGrid-style event webhooks: a JSON array of events.

Each event has ``event`` (delivered, open, click, bounce, dropped, spamreport,
unsubscribe, group_unsubscribe, group_resubscribe...), ``timestamp``, ``sg_event_id`` and
the message's custom args at top level: HPE sends ``decision_id`` (in the ``X-SMTPAPI``
header), so events come back tied to their decision. Mailgun, Postmark and others can
post the same shape through a small relay, or a plugin can parse their own format.
"""

from __future__ import annotations

import datetime as dt
import uuid

from hpe_core.deliver.channels import InboundEvent
from hpe_core.errors import InvalidInput
from hpe_core.store.vocabulary import ConsentStatus

#: SendGrid event -> (outcome type, consent change)
EVENTS = {
    "delivered": ("delivered", None),
    "open": ("open", None),
    "click": ("click", None),
    "bounce": ("bounce", ConsentStatus.BOUNCED),
    "dropped": ("dropped", None),
    "spamreport": ("spamreport", ConsentStatus.COMPLAINED),
    "unsubscribe": ("unsubscribe", ConsentStatus.UNSUBSCRIBED),
    "group_unsubscribe": ("unsubscribe", ConsentStatus.UNSUBSCRIBED),
    "group_resubscribe": ("resubscribe", ConsentStatus.SUBSCRIBED),
}


def looks_like(body: object) -> bool:
    return isinstance(body, list) and all(isinstance(e, dict) and "event" in e for e in body)


def parse(body: list) -> list[InboundEvent]:
    """Events HPE tracks; others (processed, deferred...) are skipped.

    :raises InvalidInput: if the array is too long
    """
    if len(body) > 5000:
        raise InvalidInput("At most 5000 events per webhook.")
    events = []
    for item in body:
        mapped = EVENTS.get(item.get("event"))
        if mapped is None:
            continue
        outcome_type, consent = mapped
        # A "blocked" bounce is the receiving server refusing for now, not a dead address.
        if item.get("event") == "bounce" and item.get("type") == "blocked":
            consent = None
        decision_id = _uuid(item.get("decision_id") or item.get("hpe_decision_id"))
        events.append(
            InboundEvent(
                type=outcome_type,
                decision_id=decision_id,
                user_id=_text(item.get("hpe_user_id")),
                config_id=_uuid(item.get("hpe_config_id")),
                occurred_at=_time(item.get("timestamp")),
                # Decision-bound events dedupe on decision + type (so SendGrid's open and
                # HPE's own pixel count once); others on SendGrid's event id.
                event_id=None if decision_id else _text(item.get("sg_event_id")),
                consent=consent,
            )
        )
    return events


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _text(value: object) -> str | None:
    return value[:200] if isinstance(value, str) and value else None


def _time(value: object) -> dt.datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1e11:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return None
