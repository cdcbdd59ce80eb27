"""hpe_core.learn.import_format and imports: one NDJSON line, checked by its schema and
told in one sentence; lines read in order with their numbers."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from hpe_core.learn import import_format, imports
from hpe_core.tenancy.settings import parse_settings

SETTINGS = parse_settings(
    {"actions": [{"id": "a"}, {"id": "b"}, {"id": "mail", "channels": ["email"]}]}
)
LINE = {
    "user_id": "u1",
    "channel": "web",
    "timestamp": "2026-03-01T10:00:00+01:00",
    "context": {"segment": "new"},
    "action_id": "a",
    "probability": 0.5,
    "reward": 1,
}


def _parse(**changes) -> import_format.ImportLine:
    line = {**LINE, **changes}
    return import_format.parse_line(
        {k: v for k, v in line.items() if v is not ...}, import_format.ImportLineSchema(SETTINGS)
    )


def test_a_good_line_becomes_a_typed_line():
    """Times in UTC, the eligible actions of the channel, the reward as a float."""
    line = _parse()
    assert line == import_format.ImportLine(
        user_id="u1",
        channel="web",
        timestamp=dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC),
        context={"segment": "new"},
        action_id="a",
        probability=0.5,
        eligible=["a", "b"],
        reward=1.0,
        events=(),
    )
    assert _parse(context=[]).context == {}  # an empty map written as [] (PHP)


def test_outcomes_default_to_the_lines_time_and_keep_a_short_type():
    """occurred_at absent or empty: the line's timestamp; types are cut to 64 characters."""
    line = _parse(
        reward=...,
        outcomes=[
            {"type": "click"},
            {"type": "purchase", "value": 20, "occurred_at": "2026-03-01T09:30:00Z"},
            {"type": "x" * 80, "occurred_at": ""},
        ],
    )
    at = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    assert line.reward is None
    assert line.events == (
        import_format.ImportedEvent("click", None, at),
        import_format.ImportedEvent("purchase", 20.0, at + dt.timedelta(minutes=30)),
        import_format.ImportedEvent("x" * 64, None, at),
    )


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"extra": 1, "other": 2}, "unknown field(s): extra, other"),
        ({"user_id": ...}, "missing user_id"),
        ({"probability": ..., "channel": ...}, "missing channel"),
        ({"user_id": ""}, "user_id must be a string of 1-256 characters"),
        ({"user_id": "u" * 257}, "user_id must be a string of 1-256 characters"),
        ({"user_id": 5}, "user_id must be a string of 1-256 characters"),
        ({"channel": "sms"}, "channel 'sms' is not one of this configuration's channels"),
        ({"channel": None}, "channel None is not one of this configuration's channels"),
        ({"action_id": "zzz"}, "unknown action_id 'zzz'"),
        ({"action_id": ["a"]}, "unknown action_id ['a']"),
        ({"probability": 0}, "probability must be a number in (0, 1]"),
        ({"probability": 1.5}, "probability must be a number in (0, 1]"),
        ({"probability": "0.5"}, "probability must be a number in (0, 1]"),
        ({"probability": True}, "probability must be a number in (0, 1]"),
        ({"context": "abc"}, "context must be an object"),
        ({"actions": ["b"]}, "actions must list known action ids, including action_id"),
        ({"actions": ["a", "zzz"]}, "actions must list known action ids, including action_id"),
        ({"actions": ["a", ["b"]]}, "actions must list known action ids, including action_id"),
        ({"actions": "a"}, "actions must list known action ids, including action_id"),
        ({"outcomes": [{"type": "click"}]}, "give either reward or outcomes"),
        ({"reward": ...}, "give either reward or outcomes"),
        ({"reward": "1"}, "reward must be a finite number"),
        ({"reward": None}, "reward must be a finite number"),
        ({"timestamp": 5}, "timestamp must be an ISO-8601 string"),
        ({"timestamp": None}, "timestamp must be an ISO-8601 string"),
        ({"timestamp": "soon"}, "timestamp is not an ISO-8601 timestamp"),
        ({"timestamp": "2026-03-01T09:00:00"}, "timestamp needs a timezone offset (e.g. Z)"),
        ({"timestamp": "0001-01-01T00:00:00+05:00"}, "timestamp is out of range"),
        ({"context": {"note": "a\u0000b"}}, "context.note: Text may not contain NUL"),
    ],
)
def test_a_bad_line_is_told_what_is_wrong(changes, error):
    """Each rule's sentence names the field (and the value, where it helps)."""
    with pytest.raises(import_format.LineError) as caught:
        _parse(**changes)
    assert str(caught.value).startswith(error)


@pytest.mark.parametrize(
    ("outcomes", "error"),
    [
        ([{"value": 3}], "outcomes[0] needs a type"),
        ([{"type": "open"}, "click"], "outcomes[1] needs a type"),
        ([{"type": 5}], "outcomes[0] needs a type"),
        ([{"type": "buy", "value": "3"}], "outcomes[0].value must be a number"),
        ([{"type": "buy", "value": True}], "outcomes[0].value must be a number"),
        ([{"type": "buy", "occurred_at": "later"}], "outcomes[0].occurred_at is not an ISO-8601"),
        (5, "outcomes must be a list of {type, value?, occurred_at?}"),
    ],
)
def test_a_bad_outcome_is_told_by_its_position(outcomes, error):
    """Outcome errors name the outcome's index; a line whose outcomes are no list is
    rejected (it used to fail the whole request)."""
    with pytest.raises(import_format.LineError) as caught:
        _parse(reward=..., outcomes=outcomes)
    assert str(caught.value).startswith(error)


def test_lines_are_read_in_order_with_their_numbers():
    """read_lines: blank lines skipped, unreadable ones rejected with their number."""
    future = dt.datetime(2026, 3, 1, 7, 0, tzinfo=dt.UTC)  # the line is 2 h later
    read = imports.read_lines(
        ["", '{"user_id": ', "[", "[1]", json.dumps(LINE), b"\xff"],
        import_format.ImportLineSchema(SETTINGS),
        future,
    )
    assert read.lines == ()
    assert [(item["line"], item["error"].split(":")[0]) for item in read.rejected] == [
        (2, "invalid JSON"),
        (3, "invalid JSON"),
        (4, "each line must be a JSON object"),
        (5, "timestamp is in the future"),
        (6, "unreadable JSON"),
    ]
