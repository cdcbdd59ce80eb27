"""What a configuration is to the Personalizer routes: the channel its Rank calls decide
on, and the decision ids its events are logged under. (Its ``personalizer`` settings
block is read like every other: ``settings.personalizer``.)

Event ids. Personalizer names an event by the caller's ``eventId`` (or one it makes up);
HPE logs each decision under a UUID. The UUID of an event's decision is derived from the
configuration and the event id (UUID 5), so finding an event is a primary-key lookup,
and a second Rank with the same event id cannot log a second decision: its insert would
collide with the first one's row. A multi-slot event logs one decision per slot, each
under the UUID of ``(event id, slot id)``. The decisions of an event are also logged with
the event id as their ``user_id`` (Personalizer has no user): treatment or holdout is
drawn per event.
"""

from __future__ import annotations

import json
import uuid

from hpe_core.errors import InvalidInput
from hpe_core.store.limits import MAX_USER_ID_LENGTH
from hpe_core.tenancy.settings import text_problem
from hpe_core.tenancy.settings_types import Settings

#: The longest event id (it is also the decisions' ``user_id``).
MAX_EVENT_ID_LENGTH = MAX_USER_ID_LENGTH


def channel_of(settings: Settings) -> str:
    """The channel Personalizer calls decide on: the configuration's first."""
    return settings.channels[0]


def new_event_id() -> str:
    """An event id for a Rank call that gave none (32 hex digits, like Personalizer's)."""
    return uuid.uuid4().hex


def check_event_id(event_id: str) -> str:
    """:raises InvalidInput: empty, too long, or not storable text"""
    problem = text_problem(event_id)
    if not event_id or len(event_id) > MAX_EVENT_ID_LENGTH:
        problem = f"An eventId is 1-{MAX_EVENT_ID_LENGTH} characters."
    if problem:
        raise InvalidInput(f"Invalid eventId: {problem}", {"eventId": [problem]})
    return event_id


def event_decision_id(config_id: uuid.UUID, event_id: str) -> uuid.UUID:
    """The id of a single-slot event's decision."""
    return uuid.uuid5(config_id, json.dumps(["rank", event_id]))


def slot_decision_id(config_id: uuid.UUID, event_id: str, slot_id: str) -> uuid.UUID:
    """The id of the decision of one slot of a multi-slot event."""
    return uuid.uuid5(config_id, json.dumps(["multislot", event_id, slot_id]))
