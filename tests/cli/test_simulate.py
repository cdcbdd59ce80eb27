"""`hpe simulate` end to end on its throwaway instance: the measurement story it prints,
and the user's own database left alone."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

from hpe_core.store.models import PREFIX
from tests.cli.test_cli import HPE, _env, hpe

THROWAWAY = re.compile(r"^Simulating on a throwaway instance in (\S+) \((.+)\)\.$")

LIFT = re.compile(r"Lift: ([+-][\d.]+)% \(95% CI ([+-][\d.]+)% to ([+-][\d.]+)%, metrics API\)")
TRUTH = re.compile(r"True lift of this run \(simulator's probabilities\): ([+-][\d.]+)%")


def test_simulate_reports_lift_truth_roi_evaluation_and_recommendations(tmp_path):
    """A short run prints the measured lift with its interval, the simulator's true lift,
    ROI, the off-policy estimates of all three policies, and the recommendations the
    measurement pass raised (the pass runs at the end of an embedded run)."""
    result = hpe(tmp_path, "simulate", "--decisions", "3000", "--wait-seconds", "1")
    out = result.stdout
    lift = LIFT.search(out)
    assert lift, out
    estimate, low, high = (float(x) for x in lift.groups())
    assert low <= estimate <= high
    truth = TRUTH.search(out)
    assert truth, out
    # Coverage itself is a 95% property (tests/core/measure/test_stats.py checks it over 2,000
    # simulated experiments); here the verdict must match the printed numbers.
    inside = low <= float(truth.group(1)) <= high
    assert ("inside the interval" in out) == inside, out
    assert re.search(r"^ROI: [+-]\d+%", out, re.M), out
    for policy in ("model", "baseline", "logged"):
        assert re.search(rf"^Off-policy \({policy}\): DR [\d.]+ \[", out, re.M), out
    assert re.search(r"^Recommendations: \d+ open\.", out, re.M), out


def _simulate(tmp_path: Path, *args: str, **env: str) -> tuple[list[str], Path]:
    """A short ``hpe simulate ARGS`` as a user whose instance folder is tmp_path/instance,
    with temporary files in tmp_path/tmp; returns its stdout lines and the throwaway
    folder its first line names (checked to be in tmp_path/tmp)."""
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    result = subprocess.run(
        [HPE, "simulate", "--decisions", "100", "--wait-seconds", "1", *args],
        cwd=tmp_path,
        env={**_env(tmp_path), "TMPDIR": str(temp), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    first = THROWAWAY.match(lines[0])
    assert first, lines[0]
    folder = Path(first.group(1))
    assert folder.parent == temp and folder.name.startswith("hpe-simulate-"), folder
    assert any(line.startswith("Lift: ") for line in lines), result.stdout
    return lines, folder


def _workspaces(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute(f'SELECT id FROM "{PREFIX}workspaces" ORDER BY id')
        return [row[0] for row in rows]


def test_simulate_leaves_the_users_database_alone_and_deletes_its_instance(tmp_path):
    """The user's ./instance database gains no simulator workspace (no file changes in
    that folder); the first line names the throwaway folder, which is gone afterwards."""
    hpe(tmp_path, "workspace", "create", "acme")
    instance = tmp_path / "instance"
    before = sorted(path.name for path in instance.iterdir())
    lines, folder = _simulate(tmp_path)
    assert "deleted at the end; --keep keeps it" in lines[0]
    assert not folder.exists() and not any((tmp_path / "tmp").iterdir())
    assert sorted(path.name for path in instance.iterdir()) == before
    assert _workspaces(instance / "hpe.db") == ["acme"]


def test_keep_keeps_the_instance_and_configured_services_are_not_used(tmp_path):
    """With HPE_DATABASE_URL and HPE_REDIS_URL set, the run still uses only its own SQLite
    file and inline jobs (the model learns); --keep keeps the folder and says so at the end."""
    user_database = tmp_path / "user.db"
    lines, folder = _simulate(
        tmp_path,
        "--keep",
        HPE_DATABASE_URL=f"sqlite:///{user_database}",
        HPE_REDIS_URL="redis://127.0.0.1:1/0",  # nothing listens: any use would fail
    )
    assert "kept at the end: --keep" in lines[0]
    assert re.search(r"model v[1-9]", "\n".join(lines)), lines
    assert not user_database.exists() and not (tmp_path / "instance").exists()
    assert lines[-1].startswith(f"Kept the throwaway instance in {folder}: "), lines[-1]
    assert f"HPE_DATABASE_URL=sqlite:///{folder / 'hpe.db'} hpe serve" in lines[-1]
    (workspace,) = _workspaces(folder / "hpe.db")
    assert workspace.startswith("simulator-")
