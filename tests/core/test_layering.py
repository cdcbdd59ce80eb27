"""Layering: the domain package stands alone (STYLE.md §1, DESIGN.md §3).

Each check runs in a fresh interpreter: this test process has Flask loaded already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import hpe_core

#: Top-level packages hpe_core must never pull in, directly or through a dependency.
FORBIDDEN = ("flask", "flask_smorest", "werkzeug", "rq", "web", "worker", "plugins", "connectors")

_PROBE = """
import importlib, json, pkgutil, sys
import hpe_core
names = ["hpe_core"]
for info in pkgutil.walk_packages(hpe_core.__path__, "hpe_core."):
    # Alembic runs migration scripts itself; importing env.py outside a migration raises.
    if info.name.startswith("hpe_core.migrations"):
        continue
    importlib.import_module(info.name)
    names.append(info.name)
loaded = sorted({name.split(".")[0] for name in sys.modules})
import web  # after the snapshot: proves this probe does see Flask when it is imported
control = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"imported": names, "loaded": loaded, "control": control}))
"""


def _probe(code: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(hpe_core.__file__).parent.parent,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def probe() -> dict:
    return _probe(_PROBE)


def test_importing_all_of_hpe_core_loads_no_web_or_queue_code(probe):
    """Importing every hpe_core module leaves Flask, flask-smorest, RQ and our glue unloaded."""
    leaked = sorted(set(FORBIDDEN) & set(probe["loaded"]))
    assert leaked == [], f"hpe_core pulled in {leaked}"


def test_the_probe_imports_every_module(probe):
    """The layering check covers the whole package, not just its __init__."""
    expected = {
        "hpe_core.tenancy.settings",
        "hpe_core.tenancy.configs",
        "hpe_core.tenancy.workspaces",
        "hpe_core.tenancy.activities",
        "hpe_core.tenancy.merge_patch",
        "hpe_core.measure.metrics",
        "hpe_core.measure.stats",
        "hpe_core.store.models",
        "hpe_core.store.db",
    }
    assert expected <= set(probe["imported"])


def test_the_probe_would_see_flask(probe):
    """Sanity check of the method: the same probe, once web is imported, does see Flask."""
    assert {"flask", "flask_smorest", "web"} <= set(probe["control"])


def test_the_import_contracts_hold():
    """lint-imports passes, as CI runs it: every contract in setup.cfg (hpe_core stands
    alone, connectors and workers need no web app, the stages are layered)."""
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=Path(hpe_core.__file__).parent.parent,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
    assert "BROKEN" not in result.stdout and "KEPT" in result.stdout


def test_lint_imports_would_see_a_broken_contract(tmp_path):
    """Control: the same tool on a contract the code breaks (tenancy imports store) fails."""
    config = tmp_path / "broken.ini"
    config.write_text(
        "[importlinter]\nroot_package = hpe_core\n\n"
        "[importlinter:contract:control]\nname = control\ntype = forbidden\n"
        "source_modules =\n    hpe_core.tenancy\nforbidden_modules =\n    hpe_core.store\n"
    )
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint), "--no-cache", str(config)],
        capture_output=True,
        text=True,
        cwd=Path(hpe_core.__file__).parent.parent,
        timeout=300,
    )
    assert result.returncode != 0 and "BROKEN" in result.stdout


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of a graph: its strongly connected parts of two or more modules
    (Tarjan's algorithm, iterative: the graph has hundreds of modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                part = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    part.append(member)
                    if member == node:
                        break
                if len(part) > 1:
                    found.append(sorted(part))
    return found


def test_the_cycle_finder_finds_cycles():
    """Control: a loop of three, a self-contained pair, and a clean chain."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert sorted(_cycles(edges)) == [["a", "b", "c"], ["d", "e"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_through_others():
    """No import cycle between modules of hpe_core, web, worker, plugins and connectors."""
    import grimp

    packages = ("hpe_core", "web", "worker", "plugins", "connectors")
    graph = grimp.build_graph(*packages, cache_dir=None)
    edges = {
        module: set(graph.find_modules_directly_imported_by(module)) & graph.modules
        for module in graph.modules
    }
    assert _cycles(edges) == []
