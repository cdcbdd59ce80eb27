"""`hpe attribution rerun`: the attribution plugin's command redoes past outcomes with the
current settings (here after a model change), through the same services as the jobs."""

from __future__ import annotations

import datetime as dt
import json

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from hpe_core.learn import attribution
from hpe_core.store.models import Attribution
from plugins.cli import add_plugin_commands
from plugins.manager import make_plugin_manager
from tests.conftest import IN_REPO_PLUGINS, make_test_app
from tests.core.learn.test_attribution import HOUR, T0, Shop
from web.extensions import app_runtime


@pytest.fixture
def hpe(monkeypatch, sqlite_url, tmp_path):
    """``hpe(*args)``: run the ``hpe`` group (plugin commands mounted) on ``sqlite_url``."""
    from web.cli import cli

    monkeypatch.setenv("HPE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("HPE_LOAD_PLUGINS", json.dumps(IN_REPO_PLUGINS))
    monkeypatch.setenv("HPE_INLINE_SWEEPER", "false")
    monkeypatch.setenv("HPE_AUTO_MIGRATE", "false")
    monkeypatch.setenv("HPE_INSTANCE_PATH", str(tmp_path / "instance"))
    group = click.Group(commands=dict(cli.commands))
    assert "attribution" in add_plugin_commands(group, make_plugin_manager(load=[]))

    def run(*args: str):
        return CliRunner().invoke(group, list(args), catch_exceptions=False)

    return run


@pytest.fixture
def shop(sqlite_url, tmp_path):
    app = make_test_app(sqlite_url, tmp_path)
    session = app_runtime(app).sessions()
    try:
        yield Shop(app, session)
    finally:
        session.close()
        app_runtime(app).engine.dispose()


def test_rerun_redoes_attribution_with_the_new_model(hpe, shop):
    """Attributed with last_touch, the model becomes linear: `rerun --since` replaces the
    credit with linear shares; outcomes before --since keep theirs."""
    touches = [shop.decide("alice", T0 + n * HOUR) for n in range(2)]
    old = shop.decide("bob", T0 - dt.timedelta(days=20))
    shop.convert("alice", T0 + 3 * HOUR)
    shop.convert("bob", T0 - dt.timedelta(days=20) + HOUR)
    shop.patch({"attribution": {"model": "last_touch"}})
    shop.attribute()
    shop.patch({"attribution": {"model": "linear"}})

    result = hpe("attribution", "rerun", str(shop.config_id), "--since", f"{T0:%Y-%m-%d}")
    assert result.exit_code == 0, result.output
    assert "1 outcome(s) since" in result.output
    assert "Attributed 1 outcome(s) with linear: 2 credit(s)" in result.output
    credit = shop.credit()
    assert credit == pytest.approx({touches[0]: 0.5, touches[1]: 0.5, old: 1.0})
    models = dict(shop.session.execute(sa.select(Attribution.decision_id, Attribution.model)).all())
    assert models[old] == "last_touch" and models[touches[0]] == "linear"


def test_rerun_no_run_only_marks_the_outcomes(hpe, shop):
    """--no-run leaves the work to the next sweep: the outcome waits, old credit stays."""
    decision_id = shop.decide("alice", T0)
    shop.convert("alice", T0 + HOUR)
    shop.attribute()
    result = hpe("attribution", "rerun", str(shop.config_id), "--since", "2026-01-01", "--no-run")
    assert result.exit_code == 0, result.output
    assert "Attributed" not in result.output
    shop.session.expire_all()
    assert attribution.configs_with_pending(shop.session) == [shop.config_id]
    assert shop.credit() == {decision_id: 1.0}


def test_rerun_of_an_unknown_configuration_is_a_clean_error(hpe, shop):
    """An unknown id exits 1 with one `Error:` line, not a traceback."""
    result = hpe(
        "attribution", "rerun", "00000000-0000-0000-0000-000000000000", "--since", "2026-01-01"
    )
    assert result.exit_code == 1
    assert "Error: Configuration not found." in result.output
    bad = hpe("attribution", "rerun", str(shop.config_id), "--since", "yesterday")
    assert bad.exit_code == 2 and "--since" in bad.output
