"""Property-based API tests: schemathesis generates requests from our own OpenAPI document.

Every documented operation is called in-process (WSGI) with a valid key, with data that
fits the schema (positive) and data that does not (negative). Two checks: no response is
a 5xx, and every response matches the schema documented for its status code.

schemathesis' lazy pytest integration (``from_fixture``) does not run under pytest 9, so the
operations are driven with plain hypothesis ``@given`` inside one test per generation mode.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import BASE

#: Examples per operation: valid requests matter most; invalid ones mostly meet validation.
MAX_EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15}
CHECKS = [not_a_server_error, response_schema_conformance]

# Imports take NDJSON, documented as a string body: send it as text.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")


@pytest.fixture
def api(sqlite_app, make_tenant_on):
    """Our OpenAPI document, loaded from the app, plus a key and a real configuration."""
    tenant = make_tenant_on(sqlite_app)
    client = sqlite_app.test_client()
    created = client.post(
        f"{BASE}/",
        json={"name": "fuzzed", "settings": {"actions": [{"id": "a"}, {"id": "b"}]}},
        headers=tenant.headers,
    )
    assert created.status_code == 201, created.json
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", sqlite_app)
    return schema, tenant, created.json["id"]


def _operations(schema):
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the OpenAPI document lists no operations"
    return operations


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_without_5xx_and_matches_its_schema(api, mode):
    """Generated requests never get a 5xx and every response matches the documented schema."""
    schema, tenant, config_id = api
    failures: dict[str, str] = {}
    for operation in _operations(schema):
        path_ids = {"config_id": config_id} if "{config_id}" in operation.path else None
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_ids)

        @given(case=strategy)
        @settings(
            max_examples=MAX_EXAMPLES[mode],
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def call(case):
            case.call_and_validate(headers=tenant.headers, checks=CHECKS)

        try:
            call()
        except Unsatisfiable:
            if mode is not GenerationMode.NEGATIVE:
                raise
            # e.g. GET /health: no parameters, no body, so no invalid request to make
        # Collect every operation's failure, then report them all. schemathesis raises its
        # findings as a BaseExceptionGroup, which ``except Exception`` does not catch.
        except (Exception, BaseExceptionGroup) as exc:
            failures[operation.label] = f"{type(exc).__name__}: {exc}"
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())


def test_the_document_covers_the_core_endpoints(api, sqlite_app):
    """The OpenAPI document lists the six config endpoints, activities and channels."""
    schema, _tenant, _config_id = api
    docs = sqlite_app.test_client().get("/api/v1/docs")
    assert docs.status_code == 200 and b"swagger" in docs.data.lower()
    labels = {operation.label for operation in _operations(schema)}
    for expected in (
        f"GET {BASE}/",
        f"POST {BASE}/",
        f"GET {BASE}/{{config_id}}",
        f"PATCH {BASE}/{{config_id}}",
        f"DELETE {BASE}/{{config_id}}",
        f"GET {BASE}/{{config_id}}/metrics",
        f"GET {BASE}/{{config_id}}/activities",
        f"GET {BASE}/channels",
    ):
        assert expected in labels
