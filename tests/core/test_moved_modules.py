"""HPE 0.1 module paths stay importable after the move to stage packages (hpe_core._moved).

Each check runs in a fresh interpreter: a module imports (and warns) only once per process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hpe_core._moved import MOVED, new_path

_PROBE = """
import importlib, json, sys, warnings
old, new = sys.argv[1], sys.argv[2]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    module = importlib.import_module(old)
print(json.dumps({
    "same": module is importlib.import_module(new),
    "aliased": sys.modules[old] is sys.modules[new],
    "spec": module.__spec__.name,
    "warnings": [(w.category.__name__, str(w.message)) for w in caught],
}))
"""


def _import_in_fresh_interpreter(old: str, new: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, old, new], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("old", [*MOVED, "hpe_core.policy.store", "hpe_core.policy.learner"])
def test_a_0_1_module_path_gives_the_moved_module_with_a_warning(old):
    """The old path is the new module itself (one object), and says where it went."""
    new = new_path(old)
    probe = _import_in_fresh_interpreter(old, new)
    assert probe["same"] and probe["aliased"]
    assert probe["spec"] == new  # the module keeps its own identity
    # One warning per moved path imported (a moved package's submodule: its parent too).
    assert {category for category, _ in probe["warnings"]} == {"MovedModuleWarning"}
    assert len(probe["warnings"]) == old.count(".")
    assert any(new in message for _, message in probe["warnings"])


def test_the_names_0_1_plugins_imported_still_resolve():
    """What examples/hpe-sms and docs/plugins.md of 0.1 imported, from the old paths."""
    code = """
import warnings
warnings.simplefilter("ignore")
from hpe_core import hookimpl
from hpe_core.channels import Connector, HealthStatus, InboundEvent, WebhookRequest, notify
from hpe_core.delivery import Delivery, DeliveryResult, TrackingLinks
from hpe_core.errors import PermanentDeliveryError, TransientDeliveryError
import hpe_core
assert Connector is hpe_core.Connector and Delivery is hpe_core.Delivery
assert DeliveryResult is hpe_core.DeliveryResult and HealthStatus is hpe_core.HealthStatus
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_unmoved_and_unknown_paths_are_left_alone():
    """new_path knows only the moved modules: nothing else is aliased."""
    assert new_path("hpe_core.errors") is None
    assert new_path("hpe_core.hookspecs") is None
    assert new_path("hpe_core.nonexistent") is None
    assert new_path("hpe_core.policy.store") == "hpe_core.decide.policy.store"
    with pytest.raises(ModuleNotFoundError):
        __import__("hpe_core.no_such_module")


def test_the_stable_surface_names_every_plugin_facing_type():
    """Everything a connector needs comes from hpe_core itself."""
    import hpe_core
    from hpe_core.deliver import channels

    for name in (
        "Connector",
        "Delivery",
        "DeliveryResult",
        "InboundEvent",
        "WebhookRequest",
        "HealthStatus",
        "ChannelRuntime",
    ):
        assert getattr(hpe_core, name) is getattr(channels, name)
    for name in (
        "hookimpl",
        "HpeError",
        "InvalidInput",
        "NotFound",
        "Conflict",
        "TransientDeliveryError",
        "PermanentDeliveryError",
    ):
        assert name in hpe_core.__all__ and getattr(hpe_core, name)
    with pytest.raises(AttributeError):
        hpe_core.NoSuchThing  # noqa: B018
