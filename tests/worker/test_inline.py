"""The embedded default: no Redis, a sweeper thread in the API process learns by itself."""

from __future__ import annotations

import pytest

from tests.conftest import make_test_app
from tests.worker.conftest import Loop, assert_learned_exactly_once, learning_state, wait_for
from web.extensions import app_runtime, app_state


@pytest.fixture
def inline_app(sqlite_url, tmp_path):
    """An app on SQLite without Redis, with its background sweeper running every 0.2 s."""
    app = make_test_app(sqlite_url, tmp_path, INLINE_SWEEPER=True, SWEEP_INTERVAL=0.2)
    yield app
    app_state(app).sweeper.stop()
    app_runtime(app).engine.dispose()


def test_inline_sweeper_learns_closed_windows_in_the_background(inline_app):
    """Without Redis, decisions are learned within seconds of their windows closing, unasked."""
    assert app_runtime(inline_app).jobs.name == "inline"
    loop = Loop(inline_app)
    first, second = loop.create_config("First"), loop.create_config("Second")
    counts = {first: len(loop.decide_many(first, 10)), second: len(loop.decide_many(second, 4))}
    engine = app_runtime(inline_app).engine

    wait_for(
        lambda: all(learning_state(engine, c).done for c in counts),
        30,
        "the inline sweeper to learn both configurations",
        interval=0.1,
    )
    for config_id, count in counts.items():
        state = learning_state(engine, config_id)
        assert state.decisions == count
        assert_learned_exactly_once(state)
    # It keeps running: a later decision is learned too, in a new version.
    loop.decide_ok(first, "late-comer")
    wait_for(lambda: learning_state(engine, first).done, 30, "the later decision to be learned")
    state = learning_state(engine, first)
    assert state.decisions == counts[first] + 1
    assert_learned_exactly_once(state)
    assert len(state.versions) >= 2
