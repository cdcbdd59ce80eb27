"""The decision log's batch write (hpe_core.decide.decision_log): a batch's decisions kept in
memory and written in one statement (COPY on PostgreSQL, a multi-row INSERT on SQLite)
inside the caller's transaction; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from hpe_core.decide import decision_log
from hpe_core.decide.decisions import DecisionRequest
from hpe_core.deliver import touchpoints
from hpe_core.store.models import Decision
from web.extensions import app_runtime, app_state


def _stored(app, config_id) -> list:
    with app_runtime(app).sessions() as other:  # sees committed rows only
        return list(
            other.execute(
                sa.select(Decision.user_id, Decision.context, Decision.eligible)
                .where(Decision.config_id == config_id)
                .order_by(Decision.user_id)
            )
        )


def _decide_all(app, session, principal, config_id, requests):
    return touchpoints.decide_and_deliver_all(
        session, app_state(app).touchpoints, principal, config_id, [(r, None) for r in requests]
    )


def test_a_batch_is_written_at_flush_in_the_callers_transaction(app, session, principal, config_id):
    """Nothing reaches the table before flush; the rows after it keep every column
    (JSON context and lists, text with tabs, newlines and backslashes)."""
    context = {"note": "tab\there\nnew line \\ backslash", "nested": {"n": [1, 2.5, None]}}
    engine = app_runtime(app).decisions
    with decision_log.collecting(session) as pending:
        for user in ("u1", "u2", "u3"):
            request = DecisionRequest(user_id=user, channel="web", context=context)
            engine.decide(session, principal, config_id, request)
        assert len(pending.rows) == 3
        assert session.scalar(sa.select(sa.func.count()).select_from(Decision)) == 0
        assert decision_log.flush(session) == 3
    assert _stored(app, config_id) == []  # not committed yet
    session.commit()
    rows = _stored(app, config_id)
    assert [(r.user_id, r.context, r.eligible) for r in rows] == [
        (user, context, ["a", "b"]) for user in ("u1", "u2", "u3")
    ]


def test_a_failed_batch_write_leaves_nothing(app, session, principal, config_id):
    """Two requests naming the same decision id: the one statement fails on the primary
    key, and none of the batch is kept."""
    same = uuid.uuid4()
    requests = [
        DecisionRequest(user_id="u1", channel="web"),
        DecisionRequest(user_id="u2", channel="web", decision_id=same),
        DecisionRequest(user_id="u3", channel="web", decision_id=same),
    ]
    with pytest.raises(IntegrityError):
        _decide_all(app, session, principal, config_id, requests)
    assert _stored(app, config_id) == []
    # The session is usable again, and a good batch goes through.
    answers = _decide_all(app, session, principal, config_id, requests[:2])
    assert [a["decision_id"] for a in answers][1] == same
    assert [r.user_id for r in _stored(app, config_id)] == ["u1", "u2"]


def test_pending_rows_count_for_frequency_caps_by_user_channel_and_time():
    pending = decision_log.Pending()
    config_id, now = uuid.uuid4(), dt.datetime.now(dt.UTC)
    for minutes, user, channel in ((0, "ada", "email"), (90, "ada", "email"), (0, "ada", "web")):
        pending.add(
            {
                "config_id": config_id,
                "user_id": user,
                "channel": channel,
                "created_at": now - dt.timedelta(minutes=minutes),
            }
        )
    since = now - dt.timedelta(hours=1)
    assert pending.count(config_id, "ada", "email", since) == 1
    assert pending.count(config_id, "ada", "email", now - dt.timedelta(hours=2)) == 2
    assert pending.count(config_id, "bob", "email", since) == 0
    assert pending.count(uuid.uuid4(), "ada", "email", since) == 0


def test_collecting_twice_on_one_session_is_refused(session):
    with decision_log.collecting(session):
        with pytest.raises(RuntimeError):
            with decision_log.collecting(session):
                pass
    with decision_log.collecting(session):  # closed: open again
        pass
