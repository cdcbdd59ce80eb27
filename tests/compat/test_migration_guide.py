"""docs/personalizer.md: its import script, run as written, moves a Personalizer DSJSON
export into a configuration; its route table names every operation of the SDK."""

from __future__ import annotations

import inspect
import json
import re
import uuid
from pathlib import Path

import pytest
from azure.ai.personalizer import PersonalizerAdministrationClient, PersonalizerClient

from hpe_core.compat.features import action_document, flat_features
from tests.conftest import BASE

GUIDE = Path(__file__).parents[2] / "docs" / "personalizer.md"
MARKER = "<!-- personalizer_to_hpe.py:"


def _script() -> dict:
    """The guide's script, executed as a module would be (its main block not run)."""
    text = GUIDE.read_text()
    after = text[text.index(MARKER) :]
    code = re.search(r"```python\n(.*?)```", after, re.S).group(1)
    namespace: dict = {"__name__": "personalizer_to_hpe"}
    exec(compile(code, "personalizer_to_hpe.py", "exec"), namespace)  # noqa: S102
    return namespace


def _event(event_id, actions, chosen, probability, cost=None, **extra) -> str:
    event = {
        "_label_Action": chosen,
        "_labelIndex": chosen - 1,
        "_label_probability": probability,
        "Timestamp": "2026-03-01T10:00:00.1234567Z",
        "Version": "1",
        "EventId": event_id,
        "a": [chosen] + [n for n in range(1, len(actions) + 1) if n != chosen],
        "c": {"User": {"tier": "gold"}, "_synthetic": False, "_multi": actions},
        "p": [probability],
        **extra,
    }
    if cost is not None:
        event["_label_cost"] = cost
    return json.dumps(event)


def test_the_guides_script_imports_a_personalizer_export(loop):
    """Actions added with Rank's rules, activated events imported with their propensity
    and reward, never-activated ones skipped; the history is evaluable at once."""
    script = _script()
    news = {"_tag": "news", "i": {"constant": 1, "id": "news"}, "Topic": {"kind": "news"}}
    latte = {"_tag": "Cafe Latte", "Drink": [{"hot": True}], "Tags": ["milk", "coffee"]}
    export = [
        _event("e1", [news, latte], 1, 0.8, cost=-1.0),
        _event("e2", [news, latte], 2, 0.2, cost=0.0),
        _event("e3", [news, latte], 2, 0.5),  # no reward joined: imported with 0
        _event("e4", [news, latte], 1, 0.9, cost=-1.0, _skipLearn=True),
        "",
    ]
    totals = script["migrate"](export, loop.base, loop.tenant.key, loop.config_id)
    assert totals == {"accepted": 3, "rejected": []}

    actions = {a["id"]: a for a in loop.settings()["actions"]}
    assert actions["news"]["features"] == {"Topic.kind": "news"}
    [latte_id] = [i for i, a in actions.items() if a["content"].get("personalizer_id")]
    assert latte_id.startswith("pz-")
    assert actions[latte_id]["features"] == {"Drink.0.hot": True, "Tags": ["milk", "coffee"]}
    rows = {row.user_id: row for row in loop.decisions()}
    assert set(rows) == {"e1", "e2", "e3"}
    assert (rows["e1"].action_id, rows["e1"].probability, rows["e1"].given_reward) == (
        "news",
        0.8,
        1.0,
    )
    assert (rows["e2"].action_id, rows["e2"].probability) == (latte_id, 0.2)
    assert rows["e3"].given_reward == 0.0
    assert rows["e1"].eligible == ["news", latte_id]
    assert rows["e1"].context == {"User": {"tier": "gold"}}
    assert {row.source for row in rows.values()} == {"import"}

    evaluation = loop.client.get(
        f"{BASE}/{loop.config_id}/evaluation?from=2026-03-01&to=2026-03-01",
        headers=loop.tenant.headers,
    ).get_json()
    assert evaluation["policies"]["logged"]["n"] == 3

    # Live Rank traffic finds the imported actions under the same ids.
    answer = loop.personalizer().rank(
        {"actions": [{"id": "Cafe Latte", "features": []}, {"id": "news", "features": []}]}
    )
    assert {item["id"] for item in answer["ranking"]} == {"Cafe Latte", "news"}
    assert len(loop.settings()["actions"]) == len(actions)


@pytest.mark.parametrize(
    "personalizer_id", ["news", "Cafe Latte", "a/b", "ünïcode", "x" * 200, "-leading"]
)
def test_the_script_and_rank_catalog_actions_alike(personalizer_id):
    """The script's id and feature rules are the Rank route's (hpe_core.compat.features)."""
    script = _script()
    features = {"Topic": {"kind": "news"}, "Tags": ["a", "b"], "Sizes": [38, 40], "n": None}
    expected = action_document(personalizer_id, flat_features([features], target="f"))
    assert script["action_of"]({"_tag": personalizer_id, **features}, 0) == expected


def test_the_guide_names_every_operation_of_the_sdk():
    """Each public method of both clients appears in the guide's route table."""
    text = GUIDE.read_text()
    section = text[text.index("## 3. Every route") : text.index("## 4. The rules")]
    for client in (PersonalizerClient, PersonalizerAdministrationClient):
        for name, _member in inspect.getmembers(client, inspect.isfunction):
            if name.startswith("_") or name in ("close", "send_request"):
                continue
            assert f"`{name}`" in section, f"{client.__name__}.{name} is not in the guide"


def test_the_endpoint_in_the_guide_is_a_configuration_id():
    """The guide's example endpoint has the shape the routes take."""
    text = GUIDE.read_text()
    found = re.search(r'endpoint = "https://hpe\.example\.com/compat/([0-9a-f-]+)"', text)
    assert uuid.UUID(found.group(1))
