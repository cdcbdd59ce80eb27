"""The plugin manager: entry points, allow/block lists, built-ins, `hpe plugins`."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from hpe_core import hookimpl
from plugins.manager import (
    BUILTIN_PLUGINS,
    connectors,
    describe_plugins,
    make_plugin_manager,
    settings_from_env,
)
from tests.conftest import BASE


def test_entry_points_register_the_in_repo_connectors():
    """email, web and ads load through the `hpe` entry-point group, as a third party's."""
    pm = make_plugin_manager(load=["email", "web", "ads"])
    assert set(connectors(pm)) == {"email", "web", "ads"}
    names = {row["name"] for row in describe_plugins(pm)}
    assert names == {"email", "web", "ads", *BUILTIN_PLUGINS}


def test_allow_and_block_lists():
    """LOAD_PLUGINS allow-lists entry points; BLOCKED_PLUGINS wins over it."""
    assert set(connectors(make_plugin_manager(load=["web"]))) == {"web"}
    assert set(connectors(make_plugin_manager(load=["web", "ads"], blocked=["ads"]))) == {"web"}
    assert "email" not in connectors(make_plugin_manager(blocked=["email"]))


def test_misspelled_hookimpl_fails_at_start():
    """check_pending: a hookimpl that matches no spec is an error, not silence."""
    pm = make_plugin_manager(load=[])

    class Typo:
        @hookimpl
        def hpe_regster_connectors(self):
            return []

    pm.register(Typo())
    from pluggy import PluginValidationError

    with pytest.raises(PluginValidationError):
        pm.check_pending()


def test_settings_from_env():
    """HPE_LOAD_PLUGINS / HPE_BLOCKED_PLUGINS as JSON or comma lists."""
    assert settings_from_env({}) == {"load": None, "blocked": []}
    assert settings_from_env({"HPE_LOAD_PLUGINS": '["email"]', "HPE_BLOCKED_PLUGINS": "a, b"}) == {
        "load": ["email"],
        "blocked": ["a", "b"],
    }


def test_invalid_plugin_config_fails_at_start(sqlite_url, tmp_path):
    """A typo in PLUGINS fails create_app with the field named."""
    from tests.conftest import make_test_app

    with pytest.raises(RuntimeError, match="smtp_prot"):
        make_test_app(sqlite_url, tmp_path, PLUGINS={"email": {"smtp_prot": 25}})


def test_hpe_plugins_lists_names_versions_hooks(sqlite_url, tmp_path, monkeypatch):
    """`hpe plugins` prints each plugin with its version and hooks."""
    from web.cli import cli

    monkeypatch.setenv("HPE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("HPE_LOAD_PLUGINS", '["email", "web", "ads"]')
    monkeypatch.setenv("HPE_INSTANCE_PATH", str(tmp_path))
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split("\t", 1) for line in result.output.strip().splitlines())
    assert "hpe_register_connectors" in lines["email"]
    assert "hpe_deliver" in lines["plugins.connector_defaults"]


def test_channels_endpoint_lists_plugin_channels(client, tenant):
    """GET /channels: one entry per connector, with its plugin name."""
    response = client.get(f"{BASE}/channels", headers=tenant.headers)
    assert response.status_code == 200
    assert {(c["name"], c["plugin"]) for c in response.get_json()} == {
        ("email", "email"),
        ("web", "web"),
        ("ads", "ads"),
    }


def test_channel_settings_cli_validates(sqlite_url, tmp_path, monkeypatch):
    """`hpe channels configure` stores settings the connector accepts, refuses others."""
    from web.cli import cli

    monkeypatch.setenv("HPE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("HPE_LOAD_PLUGINS", '["email", "web", "ads"]')
    monkeypatch.setenv("HPE_INSTANCE_PATH", str(tmp_path))
    from plugins.cli import add_plugin_commands

    group = click.Group(commands=dict(cli.commands))
    add_plugin_commands(group, make_plugin_manager(load=[]))
    runner = CliRunner()
    assert runner.invoke(group, ["workspace", "create", "acme"]).exit_code == 0
    good = runner.invoke(
        group,
        ["channels", "configure", "acme", "web", '{"allowed_origins": ["https://a.example"]}'],
    )
    assert good.exit_code == 0, good.output
    bad = runner.invoke(
        group, ["channels", "configure", "acme", "web", '{"allowed_origins": ["nope"]}']
    )
    assert bad.exit_code != 0 and "origin" in bad.output
    shown = runner.invoke(group, ["channels", "show", "acme", "web"])
    assert "https://a.example" in shown.output
    secret = runner.invoke(group, ["webhooks", "create-secret", "acme"])
    assert secret.exit_code == 0 and secret.output.strip().splitlines()[-1].startswith("whsec_")
    listed = runner.invoke(group, ["webhooks", "list-secrets", "acme"])
    assert "whsec_" in listed.output and secret.output.strip().splitlines()[-1] not in listed.output
    assert (
        runner.invoke(group, ["consent", "set", "acme", "email", "u1", "unsubscribed"]).exit_code
        == 0
    )
    assert (
        runner.invoke(group, ["consent", "show", "acme", "email", "u1"]).output.strip()
        == "unsubscribed"
    )
