"""DecisionRequest.decision_id and .deferred (added for the Personalizer routes): a caller's
own id for the logged row, and decisions that are neither counted nor learned until
activated. The engine called directly, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from hpe_core.decide.decisions import DEFERRED_UNTIL, DecisionRequest
from hpe_core.decide.results import Decision
from hpe_core.learn import learning
from hpe_core.measure import evaluation
from hpe_core.store.models import Config
from hpe_core.store.models import Decision as DecisionRow
from hpe_core.store.vocabulary import DecisionSource
from web.extensions import app_runtime


def _decide(app, session, principal, config_id, **extra) -> Decision:
    result = app_runtime(app).decisions.decide(
        session, principal, config_id, DecisionRequest(user_id="u", channel="web", **extra)
    )
    assert isinstance(result, Decision)
    session.commit()
    return result


def test_a_decision_is_logged_under_the_id_its_caller_gives(app, session, principal, config_id):
    wanted = uuid.uuid4()
    result = _decide(app, session, principal, config_id, decision_id=wanted)
    assert result.decision_id == wanted
    assert session.get(DecisionRow, wanted) is not None


def test_a_second_decision_with_the_same_id_fails_on_the_primary_key(
    app, session, principal, config_id
):
    wanted = uuid.uuid4()
    _decide(app, session, principal, config_id, decision_id=wanted)
    with pytest.raises(IntegrityError):
        _decide(app, session, principal, config_id, decision_id=wanted)
    session.rollback()
    count = session.scalar(sa.select(sa.func.count()).select_from(DecisionRow))
    assert count == 1


def test_without_an_id_each_decision_gets_a_new_one(app, session, principal, config_id):
    first = _decide(app, session, principal, config_id)
    second = _decide(app, session, principal, config_id)
    assert first.decision_id != second.decision_id


def test_a_deferred_decision_is_not_learned_nor_evaluated(app, session, principal, config_id):
    """Logged as deferred with a window that never closes: learning passes it by, even
    with a reward given, and off-policy evaluation leaves it out."""
    deferred = _decide(app, session, principal, config_id, deferred=True)
    live = _decide(app, session, principal, config_id)
    session.execute(
        sa.update(DecisionRow)
        .where(DecisionRow.id.in_([deferred.decision_id, live.decision_id]))
        .values(given_reward=1.0)
    )
    session.commit()
    row = session.get(DecisionRow, deferred.decision_id)
    assert row.source == DecisionSource.DEFERRED
    assert row.window_closes_at == DEFERRED_UNTIL
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    report = learning.learn_all_closed(session, config_id, now=later)
    assert report.learned == 1
    session.expire_all()
    assert session.get(DecisionRow, deferred.decision_id).learned_at is None
    today = dt.datetime.now(dt.UTC).date()
    result = evaluation.evaluate(
        session, session.get(Config, config_id), date_from=today, date_to=today
    )
    assert result.n == 1  # the live one only


def test_a_live_decision_still_closes_after_the_reward_wait(app, session, principal, config_id):
    result = _decide(app, session, principal, config_id)
    row = session.get(DecisionRow, result.decision_id)
    assert row.source == DecisionSource.LIVE
    waited = (row.window_closes_at - row.created_at).total_seconds()
    assert waited == 86400  # the default reward.wait_seconds
