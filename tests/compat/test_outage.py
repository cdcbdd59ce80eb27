"""A database outage on the Personalizer routes: 503 with Retry-After in Personalizer's
error shape, as the rest of the API answers it (not a 500 with a traceback)."""

from __future__ import annotations

import logging
import uuid

import pytest

from tests.conftest import make_test_app
from web.extensions import app_runtime

#: Nothing listens on port 1: every connection attempt is refused at once.
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/hpe"


@pytest.fixture
def cut_off_app(tmp_path):
    app = make_test_app(UNREACHABLE, tmp_path, SCHEMA_CHECK=False)
    yield app
    app_runtime(app).engine.dispose()


def test_an_unreachable_database_answers_personalizers_503(cut_off_app, caplog):
    client = cut_off_app.test_client()
    headers = {"Ocp-Apim-Subscription-Key": "hpe_sk_" + "a" * 43}
    base = f"/compat/{uuid.uuid4()}/personalizer"
    caplog.set_level(logging.INFO)
    for method, path, body in (
        ("POST", "/rank", {"actions": [{"id": "a"}]}),
        ("POST", "/events/e1/reward", {"value": 1}),
        ("GET", "/configurations/service", None),
    ):
        response = client.open(base + path, method=method, json=body, headers=headers)
        assert response.status_code == 503, response.get_data(as_text=True)
        assert response.headers["Retry-After"] == "2"
        error = response.get_json()["error"]
        assert error["code"] == "ServiceUnavailable" and "database" in error["message"]
    assert not [r for r in caplog.records if r.exc_info is not None]  # no traceback
