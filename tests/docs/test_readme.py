"""The README's walk-through, run for real: every ```sh block of "Walk-through with curl"
(through "Decisions, outcomes and learning") in one bash session against a live
``hpe serve``, and every documented output compared with the real one by its keys.

Values are not compared (ids and times differ on every run); keys and container types
are. Where a documented object or list shows ``…``, it is trimmed: the documented part
must be there, more may follow. Anywhere else the keys must be exactly the documented ones.
The blocks run as written, except for the server's address (a free port) and
``.venv/bin/`` (this interpreter's scripts), on a fresh instance folder in a temp dir.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import IN_REPO_PLUGINS
from tests.servers import hpe_serving

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = ("## Walk-through with curl", "## Concepts")
#: The README's own server address and script directory, rewritten for the test's.
README_URL = "http://127.0.0.1:8000"
README_BIN = ".venv/bin/"
#: What a documented ``…`` becomes: a key of an object, an item of a list ("more here").
MORE = "…"

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.M | re.S)
_STATUS = re.compile(r"^HTTP(?:/[\d.]+)? (\d{3})\b")
_HEADER = re.compile(r"^([A-Za-z0-9-]+): (.*)$")


@dataclass
class Step:
    """One ```sh block of the walk-through and the outputs documented after it."""

    number: int  #: 1-based, among the walk-through's sh blocks
    line: int  #: where the block starts in README.md
    script: str
    outputs: list[tuple[str, str, int]] = field(default_factory=list)  #: (lang, text, line)

    def name(self) -> str:
        first = self.script.strip().splitlines()[0]
        return f"README.md:{self.line} (walk-through block {self.number}: `{first[:60]}`)"


# --- Parsing the README ----------------------------------------------------------------


def walkthrough_steps(markdown: str) -> list[Step]:
    """The walk-through's sh blocks, in order, each with the ```json / ```text blocks that
    follow it before the next sh block (its documented outputs, possibly after prose)."""
    start = markdown.index(SECTION[0])
    end = markdown.index(SECTION[1], start)
    steps: list[Step] = []
    for match in _FENCE.finditer(markdown, start, end):
        lang, text = match.group(1), match.group(2)
        line = markdown.count("\n", 0, match.start()) + 1
        if lang == "sh":
            steps.append(Step(len(steps) + 1, line, text))
        elif steps:
            steps[-1].outputs.append((lang, text, line))
    return steps


def parse_documented_json(text: str):
    """Parse a documented JSON output in which ``…`` marks a trimmed part.

    A ``…`` entry of an object becomes the key :data:`MORE` (so ``{…}`` is "any object"),
    a ``…`` item of a list becomes the item :data:`MORE`; the commas the README leaves out
    around a ``…`` are supplied. A ``…`` inside a string stays text.
    """
    out, stack = "", []
    in_string = escaped = False
    for index, char in enumerate(text):
        if in_string:
            escaped, in_string = (not escaped and char == "\\"), (escaped or char != '"')
        elif char == "…":
            if out.rstrip()[-1:] not in ("{", "[", ","):
                out += ","
            out += f'"{MORE}": null' if stack[-1:] == ["{"] else f'"{MORE}"'
            if text[index + 1 :].lstrip()[:1] not in (",", "}", "]"):
                out += ","
            continue
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append(char)
        elif char in "}]":
            stack.pop()
        out += char
    return json.loads(out)


def json_documents(text: str) -> list:
    """Split a block's stdout into its top-level JSON documents, in order."""
    decoder, documents, index = json.JSONDecoder(), [], 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index == len(text):
            return documents
        document, index = decoder.raw_decode(text, index)
        documents.append(document)


# --- Comparing outputs -----------------------------------------------------------------


def _kind(value) -> str:
    if isinstance(value, dict):
        return "an object"
    return "a list" if isinstance(value, list) else "a value"


def key_drift(documented, actual, path: str = "$") -> list[str]:
    """Where ``actual`` does not have the documented keys, one message per place (``[]``:
    none). Values are not compared, but objects, lists and plain values must match.

    An object with a :data:`MORE` key may have keys beyond the documented ones; one
    without must have exactly them. A list is compared item by item: without a
    :data:`MORE` item it has exactly the documented number of items, with one at least that.
    """
    if _kind(documented) != _kind(actual):
        return [f"{path}: documented {_kind(documented)}, the output has {_kind(actual)}"]
    problems = []
    if isinstance(documented, dict):
        keys = set(documented) - {MORE}
        if missing := sorted(keys - set(actual)):
            problems.append(f"{path}: documented keys missing from the output: {missing}")
        if MORE not in documented and (extra := sorted(set(actual) - keys)):
            problems.append(f"{path}: output keys not documented (add them, or `…`): {extra}")
        for key in sorted(keys & set(actual)):
            child = f"{path}[{json.dumps(key)}]" if "." in key else f"{path}.{key}"
            problems += key_drift(documented[key], actual[key], child)
    elif isinstance(documented, list):
        items = [item for item in documented if item != MORE]
        trimmed = len(items) < len(documented)
        if len(actual) < len(items) or (not trimmed and len(actual) != len(items)):
            expected = f"{len(items)}{' or more' if trimmed else ''}"
            problems.append(f"{path}: documented {expected} items, the output has {len(actual)}")
        for index, (item, real) in enumerate(zip(items, actual, strict=False)):
            problems += key_drift(item, real, f"{path}[{index}]")
    return problems


def text_drift(documented: str, actual: str) -> list[str]:
    """Compare a documented text output with the real one line by line (blank lines
    ignored): an HTTP status line by its code, a header by its name (and the keys of a
    JSON value), a JSON line by its keys, any other line exactly."""
    wanted = [line.strip() for line in documented.splitlines() if line.strip()]
    got = [line.strip() for line in actual.splitlines() if line.strip()]
    if len(wanted) != len(got):
        return [f"documented {len(wanted)} lines, the output has {len(got)}: {got!r}"]
    problems = []
    for number, (want, have) in enumerate(zip(wanted, got, strict=True), start=1):
        where = f"line {number}"
        status, header = _STATUS.match(want), _HEADER.match(want)
        if status:
            real = _STATUS.match(have)
            if not real or real.group(1) != status.group(1):
                problems.append(f"{where}: documented status {status.group(1)}, got {have!r}")
        elif want[0] in "{[":
            problems += _json_line_drift(want, have, f"{where} $")
        elif header:
            real = _HEADER.match(have)
            if not real or real.group(1).lower() != header.group(1).lower():
                problems.append(f"{where}: documented header {header.group(1)}, got {have!r}")
            elif header.group(2).startswith("{"):
                problems += _json_line_drift(header.group(2), real.group(2), f"{where} $")
        elif want != have:
            problems.append(f"{where}: documented {want!r}, got {have!r}")
    return problems


def _json_line_drift(want: str, have: str, path: str) -> list[str]:
    try:
        actual = json.loads(have)
    except ValueError:
        return [f"{path}: documented JSON, got {have!r}"]
    return key_drift(parse_documented_json(want), actual, path)


def step_drift(step: Step, stdout: str) -> list[str]:
    """Every difference between a step's documented outputs and its real stdout."""
    if not step.outputs:
        return []
    langs = {lang for lang, _text, _line in step.outputs}
    if langs == {"text"} and len(step.outputs) == 1:
        _lang, text, line = step.outputs[0]
        return [f"output at README.md:{line}: {p}" for p in text_drift(text, stdout)]
    assert langs == {"json"}, f"{step.name()}: document one ```text or only ```json outputs"
    try:
        documents = json_documents(stdout)
    except ValueError as exc:
        return [f"stdout is not JSON documents ({exc}): {stdout[:500]!r}"]
    if len(documents) != len(step.outputs):
        return [f"prints {len(documents)} JSON documents, {len(step.outputs)} are documented"]
    problems = []
    for (_lang, text, line), document in zip(step.outputs, documents, strict=True):
        problems += [
            f"output at README.md:{line}: {p}"
            for p in key_drift(parse_documented_json(text), document)
        ]
    return problems


# --- Running it ------------------------------------------------------------------------


def _env(instance: Path) -> dict[str, str]:
    """No HPE_* of the caller's: embedded default (SQLite in ``instance``, jobs inline)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("HPE_")}
    env["HPE_INSTANCE_PATH"] = str(instance)
    env["HPE_LOAD_PLUGINS"] = json.dumps(IN_REPO_PLUGINS)  # installed plugins change outputs
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_steps(steps: list[Step], workdir: Path, env: dict, url: str, log: Path) -> list[str]:
    """Run every step in ONE bash session (``KEY``, ``ID``, ``LOOP``… carry over) and return
    each step's stdout. Fails naming the first step that exits non-zero."""
    bindir = f"{Path(sys.executable).parent}/"
    driver = ["set -eo pipefail"]
    for step in steps:
        script = step.script.replace(README_URL, url).replace(README_BIN, bindir)
        (workdir / f"step{step.number}.sh").write_text(script)
        driver.append(f"source step{step.number}.sh >step{step.number}.out 2>step{step.number}.err")
    (workdir / "walkthrough.sh").write_text("\n".join(driver) + "\n")
    result = subprocess.run(
        ["bash", "walkthrough.sh"], cwd=workdir, env=env, capture_output=True, timeout=120
    )
    if result.returncode != 0:
        started = [s for s in steps if (workdir / f"step{s.number}.out").exists()]
        failed = started[-1] if started else steps[0]
        pytest.fail(
            f"{failed.name()} exited {result.returncode}.\n"
            f"stdout:\n{(workdir / f'step{failed.number}.out').read_text()[-2000:]}\n"
            f"stderr:\n{(workdir / f'step{failed.number}.err').read_text()[-2000:]}\n"
            f"server log:\n{log.read_text()[-2000:]}",
            pytrace=False,
        )
    return [(workdir / f"step{step.number}.out").read_text() for step in steps]


@pytest.mark.slow
def test_readme_walkthrough_runs_and_its_outputs_have_the_documented_keys(tmp_path):
    """Every sh block of the README's walk-through succeeds against a live `hpe serve`,
    and every documented output has the keys the real one has."""
    assert shutil.which("curl"), "the README's walk-through needs curl: apt-get install curl"
    steps = walkthrough_steps(README.read_text(encoding="utf-8"))
    assert len(steps) >= 10 and any(step.outputs for step in steps), "walk-through not found"
    workdir, instance = tmp_path / "work", tmp_path / "instance"
    workdir.mkdir()
    env, log = _env(instance), tmp_path / "server.log"
    with hpe_serving(workdir, env, log, workers=2) as url:
        outputs = run_steps(steps, workdir, env, url, log)
    problems = [
        f"{step.name()}, {problem}"
        for step, stdout in zip(steps, outputs, strict=True)
        for problem in step_drift(step, stdout)
    ]
    if problems:
        pytest.fail("The README no longer matches the API:\n" + "\n".join(problems), pytrace=False)


# --- The helpers themselves ------------------------------------------------------------


def test_key_drift_needs_exactly_the_documented_keys_without_an_ellipsis():
    """Without `…`, a missing or an extra key is drift, named by its path; values never are."""
    assert key_drift({"a": 1, "b": {"c": None}}, {"a": 2, "b": {"c": "x"}}) == []
    assert key_drift({"a": 1}, {"a": 1, "b": 2}) == [
        "$: output keys not documented (add them, or `…`): ['b']"
    ]
    assert key_drift({"a": {"b": 1}}, {"a": {}}) == [
        "$.a: documented keys missing from the output: ['b']"
    ]
    assert key_drift({"a": {}}, {"a": []}) == ["$.a: documented an object, the output has a list"]


def test_key_drift_lets_an_ellipsis_stand_for_more_keys_or_items():
    """`…` in an object allows more keys (`{…}` is any object); in a list, more items."""
    documented = parse_documented_json('{"a": 1, "s": {…}, "l": [{"x": 1}, …], …}')
    assert key_drift(documented, {"a": 0, "s": {"q": 1}, "l": [{"x": 2}, {"y": 3}], "z": 0}) == []
    assert key_drift(documented, {"s": {}, "l": []}) == [
        "$: documented keys missing from the output: ['a']",
        "$.l: documented 1 or more items, the output has 0",
    ]
    assert key_drift([{"x": 1}], [{"x": 1}, {"x": 2}]) == [
        "$: documented 1 items, the output has 2"
    ]


def test_parse_documented_json_supplies_the_commas_the_readme_leaves_out():
    """An ellipsis line between entries (no commas around it) parses; `…` in a string stays."""
    assert parse_documented_json('{\n  …\n  "a": "…", "b": [1, …]\n}') == {
        MORE: None,
        "a": "…",
        "b": [1, MORE],
    }


def test_text_drift_compares_status_codes_header_names_and_json_keys():
    """Status codes, header names and JSON keys must match; dates and ids may differ."""
    documented = 'HTTP/1.1 200 OK\nDate: Sat\nX-P: {"total": 1}\n\n[{"id":"a",…}]\n'
    assert (
        text_drift(
            documented,
            'HTTP/1.1 200 OK\r\nDate: Sun\r\nX-P: {"total": 4}\r\n\r\n[{"id":"b","n":1}]',
        )
        == []
    )
    assert text_drift(documented, 'HTTP/1.1 404 NOT FOUND\nDate: Sun\nX-P: {}\n[{"n":1}]') == [
        "line 1: documented status 200, got 'HTTP/1.1 404 NOT FOUND'",
        "line 3 $: documented keys missing from the output: ['total']",
        "line 4 $[0]: documented keys missing from the output: ['id']",
    ]
