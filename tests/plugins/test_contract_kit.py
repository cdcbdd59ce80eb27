"""The plugin test kit's ConnectorContract is deep enough to catch broken connectors: one
whose webhook parser returns nothing, one whose health always says ok, one that cannot
deliver through HPE's own path. Each runs as a third party would run it (its own test
file, pytest in a subprocess, the kit's fixtures from the ``hpe`` pytest11 plugin), and
the contract must fail exactly the cases that catch the fault."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

BROKEN = '''
from hpe_core import Connector, DeliveryResult, HealthStatus, PermanentDeliveryError
from plugins.testing import ConnectorContract


class Mute(Connector):
    """Sends, but drops every provider callback on the floor."""

    name = "mute"
    description = "drops callbacks"

    def send(self, delivery):
        return DeliveryResult(status="sent", provider_id="m-1")

    def parse_webhook(self, request):
        return []

    def health(self):
        return HealthStatus(ok=self.plugin_config.get("up", True), detail="gateway")


class TestMute(ConnectorContract):
    connector_class = Mute
    unhealthy_config = {"up": False}


class Cheerful(Connector):
    """Its health check never looks at anything."""

    name = "cheerful"
    description = "always ok"

    def send(self, delivery):
        return DeliveryResult(status="sent")


class TestCheerful(ConnectorContract):
    connector_class = Cheerful
    unhealthy_config = {"gateway_url": "http://127.0.0.1:9"}


class Silent(Connector):
    """Declares no way to tell it is down."""

    name = "silent"
    description = "no unhealthy case"

    def send(self, delivery):
        return DeliveryResult(status="sent")


class TestSilent(ConnectorContract):
    connector_class = Silent


class Refusing(Connector):
    """send() works alone, but refuses what HPE hands it (it wants a recipient field it
    never declared)."""

    name = "refusing"
    description = "undeclared recipient"

    def send(self, delivery):
        if "device" not in delivery.recipient:
            raise PermanentDeliveryError("No device.")
        return DeliveryResult(status="sent")

    def health(self):
        return HealthStatus(ok=self.plugin_config.get("up", True))


class TestRefusing(ConnectorContract):
    connector_class = Refusing
    recipient = {}
    unhealthy_config = {"up": False}

    def delivery(self, **overrides):
        overrides.setdefault("recipient", {"device": "d-1"})
        return super().delivery(**overrides)
'''


def test_the_contract_fails_broken_connectors(tmp_path):
    """Exactly the cases that catch each fault fail; everything else in the contract passes."""
    (tmp_path / "test_broken.py").write_text(BROKEN)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", "test_broken.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    failed = set(re.findall(r"^FAILED test_broken.py::(\S+)", result.stdout, re.M))
    assert failed == {
        "TestMute::test_parses_webhooks_into_events",
        "TestMute::test_webhook_becomes_an_outcome",
        "TestCheerful::test_health_can_say_not_ok",
        "TestSilent::test_health_can_say_not_ok",
        "TestRefusing::test_delivers_through_hpe",
    }, result.stdout[-4000:] + result.stderr[-2000:]
    assert "providers must echo" in result.stdout or "returned no event" in result.stdout
    assert "Set unhealthy_config" in result.stdout


def test_a_channel_left_out_says_why(hpe_pm, register_plugin):
    """A channel whose plugin needs settings it was not given is named with the fields."""
    from marshmallow import RAISE, Schema, fields

    from hpe_core import Connector, hookimpl
    from plugins.manager import unavailable_channels

    class GatewaySchema(Schema):
        class Meta:
            unknown = RAISE

        gateway_url = fields.Url(required=True)

    class Push(Connector):
        name = "push"
        description = "push"
        config_schema = GatewaySchema

    class Plugin:
        @hookimpl
        def hpe_register_connectors(self):
            return [Push]

    register_plugin(Plugin(), "push-plugin")
    reasons = unavailable_channels(hpe_pm, {}, available=[])
    assert "gateway_url" in reasons["push"] and "PLUGINS['push']" in reasons["push"]
    assert unavailable_channels(hpe_pm, {}, available=["push"]) == {}
