"""The ``hpe`` console script, run for real in a subprocess with a clean environment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from hpe_core.store import db as hpe_db
from hpe_core.store.models import PREFIX
from tests.conftest import (
    BASE,
    IN_REPO_PLUGINS,
    POSTGRES_URL,
    TEST_SECRET_KEY,
    make_test_app,
)
from tests.servers import free_port, hpe_serving
from web.extensions import app_runtime

HPE = str(Path(sys.executable).with_name("hpe"))
KEY = re.compile(r"hpe_sk_[A-Za-z0-9_-]{20,}")


def _env(tmp_path: Path, database_url: str | None = None) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("HPE_")}
    env["HPE_INSTANCE_PATH"] = str(tmp_path / "instance")
    # Like the app fixtures: only the in-repo plugins, whatever else the venv has installed.
    env["HPE_LOAD_PLUGINS"] = json.dumps(IN_REPO_PLUGINS)
    env["HPE_SECRET_KEY"] = TEST_SECRET_KEY  # the test apps' key (PostgreSQL needs one)
    if database_url:
        env["HPE_DATABASE_URL"] = database_url
    return env


def hpe(tmp_path: Path, *args: str, database_url: str | None = None, check: bool = True):
    """Run ``hpe ARGS`` in ``tmp_path`` (no .env there) and return the completed process."""
    result = subprocess.run(
        [HPE, *args],
        cwd=tmp_path,
        env=_env(tmp_path, database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def _embedded_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'instance' / 'hpe.db'}"


def _status_with(tmp_path: Path, key: str) -> int:
    """Status of GET / with ``key``, from an app on the embedded database the CLI used."""
    app = make_test_app(_embedded_url(tmp_path), tmp_path)
    try:
        response = app.test_client().get(f"{BASE}/", headers={"Authorization": f"Bearer {key}"})
        return response.status_code
    finally:
        app_runtime(app).engine.dispose()


@pytest.fixture
def workdir(tmp_path):
    """An empty working directory (no .env, no instance folder yet)."""
    path = tmp_path / "cwd"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def acme(tmp_path_factory):
    """One embedded-default instance with workspace acme, made by `hpe workspace create`.

    Shared by this module's tests to keep the number of (slow) interpreter starts down;
    each test makes its own keys and asserts only about those.
    """
    path = tmp_path_factory.mktemp("acme")
    result = hpe(path, "workspace", "create", "acme")
    named = _last_line(hpe(path, "keys", "create", "acme", "--name", "braze-prod"))
    return path, result, named


def _last_line(result) -> str:
    return result.stdout.strip().splitlines()[-1]


def test_help_lists_the_commands(workdir):
    """hpe --help names serve, worker, db, workspace and keys, and touches no database."""
    output = hpe(workdir, "--help").stdout
    for command in ("serve", "worker", "db", "workspace", "keys"):
        assert re.search(rf"^\s+{command}\s", output, re.MULTILINE), command
    assert not (workdir / "instance").exists()


def test_workspace_create_prints_a_working_key_last(acme):
    """The last stdout line of `hpe workspace create` is a key that the API accepts."""
    path, result, _named = acme
    key = _last_line(result)
    assert KEY.fullmatch(key)
    assert "acme" in result.stderr  # the explanation goes to stderr, the key alone to stdout
    assert (path / "instance" / "hpe.db").exists()  # the embedded default, migrated
    assert _status_with(path, key) == 200


def test_workspace_create_refuses_duplicates(acme):
    """Creating an existing workspace fails with a message, no traceback and no key."""
    path, _result, _named = acme
    result = hpe(path, "workspace", "create", "acme", check=False)
    assert result.returncode != 0
    assert "already exists" in result.stderr
    assert "Traceback" not in result.stderr
    assert not KEY.search(result.stdout)


def test_keys_list_never_prints_secrets(acme):
    """keys list shows prefixes, workspaces, kinds and names, and no key's secret part."""
    path, created, named = acme
    listing = hpe(path, "keys", "list").stdout
    assert listing.splitlines()[0].split("\t")[:3] == ["prefix", "workspace", "kind"]
    for key in (_last_line(created), named):
        assert key[:15] in listing
        secret = key[15:]
        # not the key, nor any 8-character piece of its secret part
        assert not any(secret[i : i + 8] in listing for i in range(len(secret) - 7))
    [row] = [line for line in listing.splitlines() if line.startswith(named[:15])]
    assert row.split("\t")[1:4] == ["acme", "secret", "braze-prod"]


def test_keys_revoke_makes_the_key_401(acme):
    """After `hpe keys revoke <prefix>` the key is refused; the workspace's other keys work."""
    path, created, doomed = acme
    app = make_test_app(_embedded_url(path), path)
    try:
        client = app.test_client()

        def status(key):
            return client.get(f"{BASE}/", headers={"Authorization": f"Bearer {key}"}).status_code

        assert status(doomed) == 200
        result = hpe(path, "keys", "revoke", doomed[:15])
        assert doomed[:15] in result.stdout
        assert status(doomed) == 401
        assert status(_last_line(created)) == 200
    finally:
        app_runtime(app).engine.dispose()
    unknown = hpe(path, "keys", "revoke", "hpe_sk_nothere0", check=False)
    assert unknown.returncode != 0 and "No key" in unknown.stderr


@pytest.fixture
def fresh_postgres_url():
    """The URL of an empty PostgreSQL database of this test's own, dropped afterwards."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"hpe_cli_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    # The plain "postgresql://" spelling operators paste: HPE picks the psycopg 3 driver.
    yield POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://") + (
        "/" + name
    )
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_db_upgrade_on_a_fresh_postgres(workdir, fresh_postgres_url):
    """PostgreSQL is never migrated implicitly: commands say so until `hpe db upgrade` runs."""
    refused = hpe(
        workdir, "workspace", "create", "acme", database_url=fresh_postgres_url, check=False
    )
    assert refused.returncode != 0
    assert "hpe db upgrade" in refused.stderr and "Traceback" not in refused.stderr

    upgraded = hpe(workdir, "db", "upgrade", database_url=fresh_postgres_url)
    assert f"Database at revision {hpe_db.head_revision()}." in upgraded.stdout
    engine = hpe_db.make_engine(fresh_postgres_url.replace("://", "+psycopg://", 1))
    try:
        assert hpe_db.current_revision(engine) == hpe_db.head_revision()
        assert f"{PREFIX}configs" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_an_unreachable_database_is_one_line_not_a_traceback(workdir):
    """A database that does not answer gives a one-line error and exit status 1."""
    result = hpe(
        workdir,
        "db",
        "upgrade",
        database_url=f"postgresql://nobody@127.0.0.1:{free_port()}/nothing",
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error: cannot reach the database")
    assert "Traceback" not in result.stderr


def _get(url: str, key: str | None = None):
    request = urllib.request.Request(url)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow
def test_serve_answers_over_http_on_the_embedded_default(workdir):
    """`hpe serve` (gunicorn) on SQLite in the instance folder serves the API over real HTTP."""
    key = _last_line(hpe(workdir, "workspace", "create", "acme"))
    with hpe_serving(workdir, _env(workdir), workdir.parent / "server.log") as base:
        status, document = _get(f"{base}/api/v1/openapi.json")
        assert status == 200
        assert document["openapi"].startswith("3.")
        assert f"{BASE}/" in document["paths"]
        assert _get(f"{base}{BASE}/", key) == (200, [])
        status, error = _get(f"{base}{BASE}/")
        assert status == 401 and set(error) == {"code", "status", "message", "errors"}
        created_status, created = _post(f"{base}{BASE}/", key)
        assert created_status == 201 and created["settings"]["holdout"]["percent"] == 10.0


@pytest.mark.slow
def test_serve_writes_nothing_to_the_home_directory(workdir, tmp_path):
    """`hpe serve` leaves $HOME alone: no gunicorn control socket in ~/.gunicorn."""
    home = tmp_path / "home"
    home.mkdir()
    env = _env(workdir)
    env["HOME"] = str(home)
    # Else gunicorn would put its socket in $XDG_RUNTIME_DIR, and $HOME would prove nothing.
    env.pop("XDG_RUNTIME_DIR", None)
    with hpe_serving(workdir, env, workdir.parent / "server.log") as base:
        assert _get(f"{base}/api/v1/health")[0] == 200
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == []


def _post(url: str, key: str):
    body = json.dumps({"name": "over http", "settings": {"actions": [{"id": "a"}]}}).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())
