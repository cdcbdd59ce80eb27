"""The ``hpe`` console script, run for real in a subprocess with a clean environment."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import BASE, POSTGRES_URL, make_test_app

HPE = str(Path(sys.executable).with_name("hpe"))
KEY = re.compile(r"hpe_sk_[A-Za-z0-9_-]{20,}")


def _env(tmp_path: Path, database_url: str | None = None) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("HPE_")}
    env["HPE_INSTANCE_PATH"] = str(tmp_path / "instance")
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


def _status_with(tmp_path: Path, key: str, database_url: str | None = None) -> int:
    """Status of GET / with ``key``, from an app on the database the CLI used."""
    app = make_test_app(database_url or _embedded_url(tmp_path), tmp_path)
    try:
        response = app.test_client().get(f"{BASE}/", headers={"Authorization": f"Bearer {key}"})
        return response.status_code
    finally:
        app.extensions["hpe_engine"].dispose()


@pytest.fixture
def workdir(tmp_path):
    """An empty working directory (no .env, no instance folder yet)."""
    path = tmp_path / "cwd"
    path.mkdir()
    return path


def test_help_lists_the_commands(workdir):
    """hpe --help names serve, worker, db, workspace and keys; each has its own --help."""
    output = hpe(workdir, "--help").stdout
    for command in ("serve", "worker", "db", "workspace", "keys"):
        assert re.search(rf"^\s+{command}\s", output, re.MULTILINE), command
    keys_help = hpe(workdir, "keys", "--help").stdout
    assert all(word in keys_help for word in ("create", "list", "revoke"))
    assert "--port" in hpe(workdir, "serve", "--help").stdout
    assert not (workdir / "instance").exists()  # --help touches no database


def test_workspace_create_prints_a_working_key_last(workdir):
    """The last stdout line of `hpe workspace create` is a key that the API accepts."""
    result = hpe(workdir, "workspace", "create", "acme")
    key = result.stdout.strip().splitlines()[-1]
    assert KEY.fullmatch(key)
    assert "acme" in result.stderr  # the explanation goes to stderr, the key alone to stdout
    assert (workdir / "instance" / "hpe.db").exists()  # the embedded default, migrated
    assert _status_with(workdir, key) == 200


def test_workspace_create_refuses_duplicates_and_bad_ids(workdir):
    """A second create of one id, or an invalid id, fails with a message and no traceback."""
    hpe(workdir, "workspace", "create", "acme")
    for workspace_id, words in (("acme", "already exists"), ("Not Valid!", "workspace id")):
        result = hpe(workdir, "workspace", "create", workspace_id, check=False)
        assert result.returncode != 0
        assert words in result.stderr
        assert "Traceback" not in result.stderr
        assert not KEY.search(result.stdout)


def test_keys_list_never_prints_secrets(workdir):
    """keys list shows prefixes, workspaces and kinds, and no key's secret part."""
    first = hpe(workdir, "workspace", "create", "acme").stdout.strip().splitlines()[-1]
    second = hpe(workdir, "keys", "create", "acme", "--name", "braze").stdout.strip()
    second = second.splitlines()[-1]
    public = hpe(workdir, "keys", "create", "acme", "--kind", "publishable").stdout.strip()
    public = public.splitlines()[-1]
    listing = hpe(workdir, "keys", "list").stdout
    for key in (first, second, public):
        assert key[:15] in listing
        secret = key[15:]
        # not the key, nor any 8-character piece of its secret part
        assert not any(secret[i : i + 8] in listing for i in range(len(secret) - 7))
    assert "braze" in listing and "publishable" in listing
    assert len(listing.strip().splitlines()) == 4  # header + three keys


def test_keys_revoke_makes_the_key_401(workdir):
    """After `hpe keys revoke <prefix>` the key is refused; the workspace's other keys work."""
    doomed = hpe(workdir, "workspace", "create", "acme").stdout.strip().splitlines()[-1]
    spare = hpe(workdir, "keys", "create", "acme").stdout.strip().splitlines()[-1]
    result = hpe(workdir, "keys", "revoke", doomed[:15])
    assert doomed[:15] in result.stdout
    assert _status_with(workdir, doomed) == 401
    assert _status_with(workdir, spare) == 200
    listing = hpe(workdir, "keys", "list").stdout
    [row] = [line for line in listing.splitlines() if line.startswith(doomed[:15])]
    assert not row.endswith("\t-")  # the revoked column holds a timestamp
    unknown = hpe(workdir, "keys", "revoke", "hpe_sk_nothere0", check=False)
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
    assert "Database at revision" in upgraded.stdout
    current = hpe(workdir, "db", "current", database_url=fresh_postgres_url).stdout
    revisions = dict(line.split(":", 1) for line in current.strip().splitlines())
    assert revisions["current"].strip() == revisions["head"].strip() != "none"

    key = hpe(workdir, "workspace", "create", "acme", database_url=fresh_postgres_url)
    key = key.stdout.strip().splitlines()[-1]
    assert _status_with(workdir, key, fresh_postgres_url.replace("://", "+psycopg://", 1)) == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    key = hpe(workdir, "workspace", "create", "acme").stdout.strip().splitlines()[-1]
    port = _free_port()
    server = subprocess.Popen(
        [HPE, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=workdir,
        env=_env(workdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its gunicorn workers share our group id, to stop them all
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, document = _get(f"{base}/api/v1/openapi.json")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "hpe serve did not answer within 60 s"
                time.sleep(0.3)
        assert status == 200
        assert document["openapi"].startswith("3.")
        assert f"{BASE}/" in document["paths"]
        assert _get(f"{base}{BASE}/", key) == (200, [])
        status, error = _get(f"{base}{BASE}/")
        assert status == 401 and set(error) == {"code", "status", "message", "errors"}
        created_status, created = _post(f"{base}{BASE}/", key)
        assert created_status == 201 and created["settings"]["holdout"]["percent"] == 10.0
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        server.stdout.close()
    assert server.returncode is not None


def _post(url: str, key: str):
    body = json.dumps({"name": "over http", "settings": {"actions": [{"id": "a"}]}}).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())
