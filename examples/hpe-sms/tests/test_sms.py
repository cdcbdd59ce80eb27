"""The SMS connector against HPE's contract, with the plugin test kit (no imports of
fixtures needed: HPE's pytest plugin provides them)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import hpe_sms
import pytest

from plugins.testing import ConnectorContract


@pytest.fixture
def gateway():
    """A local SMS gateway that records what it receives."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"id": "sms-1"}')

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/send", received
    server.shutdown()
    server.server_close()


class TestSmsConnector(ConnectorContract):
    connector_class = hpe_sms.SmsConnector
    plugin = hpe_sms
    plugin_config = {"gateway_url": "http://127.0.0.1:9/send"}
    content = {"text": "Hi {{ first_name }}, 20% off today"}
    recipient = {"phone": "+15550100"}
    variables = {"first_name": "Ada"}
    transient_config = {"gateway_url": "http://127.0.0.1:9/send"}  # nothing listens on 9
    permanent_recipient = {}
    unhealthy_config = {"gateway_url": "http://127.0.0.1:9/send"}  # health: not ok

    def working_config(self, request):
        """The local gateway: send() and HPE's delivery job post to it."""
        url, self.received = request.getfixturevalue("gateway")
        return {"gateway_url": url}

    def webhook_body(self, decision_id):
        """The gateway's delivery receipt: it echoes the reference (the decision id)."""
        return json.dumps({"reference": str(decision_id), "status": "delivered"}).encode()


def test_sends_the_rendered_text(gateway):
    """The gateway receives the phone number and the rendered text."""
    url, received = gateway
    contract = TestSmsConnector()
    result = contract.make_connector({"gateway_url": url}).send(contract.delivery())
    assert result.provider_id == "sms-1"
    assert received[0]["to"] == "+15550100"
    assert received[0]["text"] == "Hi Ada, 20% off today"


def test_recipient_needs_an_e164_phone():
    """The channel declares its recipient: a phone in E.164, nothing else."""
    from hpe_core.errors import InvalidInput

    assert hpe_sms.SmsConnector.validate_recipient({"phone": "+15550100"}) == {"phone": "+15550100"}
    for bad in ({}, {"phone": "555"}, {"phone": "+15550100", "email": "a@b.c"}):
        with pytest.raises(InvalidInput):
            hpe_sms.SmsConnector.validate_recipient(bad)
