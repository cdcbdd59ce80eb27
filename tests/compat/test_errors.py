"""Keys, workspaces and bad input on the Personalizer routes: Personalizer's error shape,
the SDK's usual exceptions, a 4xx for anything malformed and never a 500."""

from __future__ import annotations

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError

from tests.compat.conftest import assert_personalizer_error, rank_request

API_VERSION = {"api-version": "2022-09-01-preview"}


def _assert_shape(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def test_a_missing_or_wrong_key_is_a_401(loop):
    with pytest.raises(ClientAuthenticationError) as raised:
        loop.personalizer("hpe_sk_notakeyatall").rank(rank_request())
    assert raised.value.status_code == 401
    response = requests.post(f"{loop.endpoint}/personalizer/rank", params=API_VERSION, json={})
    _assert_shape(response, 401, "Unauthorized")
    assert loop.decisions() == []


def test_another_workspaces_configuration_is_a_404(loop, make_tenant):
    """The workspace comes from the key: another workspace's loop does not exist for it."""
    stranger = make_tenant("elsewhere")
    client = loop.personalizer(stranger.key)
    with pytest.raises(ResourceNotFoundError) as raised:
        client.rank(rank_request())
    assert_personalizer_error(raised.value, 404, "ResourceNotFound")
    with pytest.raises(ResourceNotFoundError):
        loop.admin(stranger.key).get_service_configuration()
    with pytest.raises(ResourceNotFoundError):
        loop.admin(stranger.key).export_model()
    with pytest.raises(ResourceNotFoundError):
        loop.admin(stranger.key).delete_logs()
    assert loop.decisions() == []


def test_an_unknown_configuration_or_path_is_personalizers_404(loop):
    key = {"Ocp-Apim-Subscription-Key": loop.tenant.key}
    for url in (
        f"{loop.base}/compat/00000000-0000-0000-0000-000000000000/personalizer/rank",
        f"{loop.base}/compat/not-a-uuid/personalizer/rank",
        f"{loop.endpoint}/personalizer/nothing-here",
        f"{loop.endpoint}/elsewhere",
    ):
        _assert_shape(requests.post(url, params=API_VERSION, json={}, headers=key), 404)
    # A known path with another method.
    response = requests.get(f"{loop.endpoint}/personalizer/rank", headers=key)
    _assert_shape(response, 404, "ResourceNotFound")


def test_the_older_path_versions_and_a_bearer_key_work(loop):
    """/personalizer/v1.0/rank (the 2019 client's form) and Authorization: Bearer."""
    response = requests.post(
        f"{loop.endpoint}/personalizer/v1.0/rank",
        json=rank_request(eventId="legacy"),
        headers={"Authorization": f"Bearer {loop.tenant.key}"},
    )
    assert response.status_code == 201, response.text
    event = response.json()["eventId"]
    response = requests.post(
        f"{loop.endpoint}/personalizer/v1.0/events/{event}/reward",
        json={"value": 1},
        headers={"Ocp-Apim-Subscription-Key": loop.tenant.key},
    )
    assert response.status_code == 204
    [row] = loop.decisions()
    assert row.given_reward == 1.0


ROUTES = [
    ("POST", "rank"),
    ("POST", "multislot/rank"),
    ("POST", "events/e1/reward"),
    ("POST", "multislot/events/e1/reward"),
    ("PUT", "configurations/service"),
    ("PUT", "configurations/policy"),
    ("POST", "configurations/applyFromEvaluation"),
    ("PUT", "evaluations/ev1"),
]
BODIES = [
    b"",
    b"{not json",
    b"[]",
    b'"text"',
    b"null",
    b'{"actions": "pasta"}',
    b'{"actions": [{"id": 7}]}',
    b'{"actions": [{"id": "a", "features": {"not": "a list"}}]}',
    b'{"actions": [{"id": "a", "features": [["nested", "list"]]}]}',
    b'{"contextFeatures": [{"x": NaN}], "actions": [{"id": "a"}]}',
    b'{"contextFeatures": [{"x": "nul\\u0000"}], "actions": [{"id": "a"}]}',
    b'{"contextFeatures": [{"x": "\\ud800"}], "actions": [{"id": "a"}]}',
    b'{"eventId": 12, "actions": [{"id": "a"}]}',
    b'{"value": 1e999}',
    b'{"value": 123' + b"4" * 5000 + b"}",
    b"[" * 5000 + b"]" * 5000,
    b'{"reward": [{"slotId": null, "value": 1}]}',
    b'{"slots": [{"id": "", "baselineAction": ""}], "actions": [{"id": ""}]}',
    b'{"rewardWaitTime": 5, "defaultReward": 0, "rewardAggregation": "sum",'
    b' "explorationPercentage": 0.1}',
    b'{"arguments": ["--cb_explore_adf"]}',
    b'{"evaluationId": 1, "policyName": 2}',
    b'{"name": "e", "startTime": "2026-13-45", "endTime": "2026-01-01"}',
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_malformed_bodies_are_4xx_never_500(loop, method, path):
    """Every route, every malformed body: a 4xx in Personalizer's shape, nothing logged."""
    loop.personalizer().rank(rank_request(eventId="e1"))
    headers = {"Ocp-Apim-Subscription-Key": loop.tenant.key, "Content-Type": "application/json"}
    for body in BODIES:
        response = requests.request(
            method,
            f"{loop.endpoint}/personalizer/{path}",
            params=API_VERSION,
            data=body,
            headers=headers,
        )
        assert 400 <= response.status_code < 500, (path, body[:80], response.text)
        _assert_shape(response, response.status_code)
    assert len(loop.decisions()) == 1


def test_bad_query_parameters_are_400s(loop):
    key = {"Ocp-Apim-Subscription-Key": loop.tenant.key}
    for url, params in (
        (f"{loop.endpoint}/personalizer/evaluations", {"top": "0"}),
        (f"{loop.endpoint}/personalizer/evaluations", {"skip": "-1"}),
        (f"{loop.endpoint}/personalizer/evaluations", {"top": "many"}),
        (f"{loop.endpoint}/personalizer/model", {"signed": "perhaps"}),
    ):
        _assert_shape(requests.get(url, params=params, headers=key), 400)
