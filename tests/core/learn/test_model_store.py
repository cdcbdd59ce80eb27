"""hpe_core.decide.policy.store: a model's blob is read only where a learner is built."""

from __future__ import annotations

import contextlib
import datetime as dt
import re

import pytest
import sqlalchemy as sa

from hpe_core.decide.policy import store
from hpe_core.decide.policy.exploration import vw_arguments
from hpe_core.decide.policy.learner import Learner
from hpe_core.learn import learning
from hpe_core.store.models import Decision, ModelVersion
from hpe_core.store.vocabulary import Policy, Variant
from hpe_core.tenancy import configs, workspaces
from hpe_core.tenancy.workspaces import Principal
from web.extensions import app_runtime

T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
ACTIONS = [{"id": "a", "features": {"style": "bold"}}, {"id": "b"}]
#: The blob column in a SELECT's column list ("..._model_versions".model or its alias).
_BLOB = re.compile(rf"{ModelVersion.__tablename__}\"?\.model\b")


@contextlib.contextmanager
def _selects(session):
    """Collect the SELECT statements the session's engine runs inside the block."""
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    engine = session.get_bind()
    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def _blob_reads(statements: list[str]) -> list[str]:
    return [statement for statement in statements if _BLOB.search(statement)]


@pytest.fixture
def config(app, session):
    """A configuration with three saved model versions (real VW models)."""
    workspaces.create_workspace(session, "blobs")
    created = configs.create(
        session,
        Principal("blobs", "test"),
        app_runtime(app).catalog,
        name="Blobs",
        settings={"actions": ACTIONS},
    )
    session.commit()
    args = vw_arguments(configs.settings_of(created).document["exploration"])
    previous = None
    for _ in range(3):
        learner = Learner(args)
        previous = store.save(
            session, created.id, args=args, model=learner.save(), examples=0, previous=previous
        )
        learner.close()
    session.commit()
    session.expunge_all()  # nothing cached: every read below goes to the database
    return created.id, args


def test_the_blob_column_is_what_the_probe_matches(session, config):
    """Control: selecting a whole version (blob included) is seen as a blob read."""
    config_id, _args = config
    with _selects(session) as seen:
        session.scalars(sa.select(ModelVersion).where(ModelVersion.config_id == config_id)).all()
    assert len(_blob_reads(seen)) == 1


def test_listing_versions_never_reads_a_blob(session, config):
    """list_versions selects no blob, and touching one on a listed version raises."""
    config_id, _args = config
    with _selects(session) as seen:
        versions = session.scalars(store.list_versions(session, config_id)).all()
    assert [v.version for v in versions] == [3, 2, 1]
    assert seen and _blob_reads(seen) == []
    with pytest.raises(sa.exc.InvalidRequestError, match="raiseload"):
        _ = versions[0].model


def test_latest_and_prune_never_read_a_blob(session, config):
    """The newest version's number and checksum, and pruning, leave the blob unread."""
    config_id, _args = config
    with _selects(session) as seen:
        newest = store.latest(session, config_id)
        assert (newest.version, len(newest.checksum)) == (3, 64)
        assert store.prune(session, config_id, keep=1) == 2
    assert seen and _blob_reads(seen) == []


def test_the_blob_is_read_once_where_a_learner_is_built(session, config):
    """load_learner reads the blob of the newest version (one query), and only then."""
    config_id, args = config
    newest = store.latest(session, config_id)
    with _selects(session) as seen:
        assert store.load_learner(newest, args + " --noconstant") is None  # other arguments
    assert _blob_reads(seen) == []
    with _selects(session) as seen:
        learner = store.load_learner(newest, args)
    learner.close()
    assert len(_blob_reads(seen)) == 1


def test_rollback_reads_only_the_restored_blob(session, config):
    """A rollback copies one blob: the version it restores."""
    config_id, args = config
    with _selects(session) as seen:
        restored = store.rollback(session, config_id, 1, current_args=args)
    assert restored.version == 4
    assert len(_blob_reads(seen)) == 1


def _closed_decisions(session, config_id, count: int, closed_at: dt.datetime) -> None:
    for n in range(count):
        session.add(
            Decision(
                workspace_id="blobs",
                config_id=config_id,
                user_id=f"u{n}",
                channel="email",
                context={"n": n},
                eligible=["a", "b"],
                probabilities=[0.5, 0.5],
                action_id="a",
                probability=0.5,
                variant=Variant.TREATMENT,
                policy=Policy.MODEL,
                created_at=closed_at - dt.timedelta(hours=1),
                window_closes_at=closed_at,
            )
        )
    session.commit()


def test_a_warm_learn_batch_reads_no_blob(session, config):
    """Learning again on the learner it kept in memory needs the newest version's number
    and checksum only: the second batch reads no blob (the first resumed from one)."""
    config_id, _args = config
    _closed_decisions(session, config_id, 3, T0)
    first = learning.learn_all_closed(session, config_id, now=T0)
    assert (first.learned, first.version) == (3, 4)
    _closed_decisions(session, config_id, 2, T0 + dt.timedelta(hours=1))
    with _selects(session) as seen:
        second = learning.learn_all_closed(session, config_id, now=T0 + dt.timedelta(hours=1))
    assert (second.learned, second.version) == (2, 5)
    assert seen and _blob_reads(seen) == []
