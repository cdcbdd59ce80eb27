"""The service configuration and the policy through Microsoft's administration client,
mapped onto HPE's settings (docs/personalizer.md)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from tests.compat.conftest import assert_personalizer_error
from tests.conftest import BASE

DEFAULT_POLICY = (
    "--cb_explore_adf --cb_type mtr --quiet -b 18 -q ca -l 0.1 --power_t 0.5 "
    "--squarecb --gamma_scale 10.0"
)


def test_the_service_configuration_reads_the_settings(loop):
    configuration = loop.admin().get_service_configuration()
    assert configuration == {
        "rewardWaitTime": "P1D",
        "defaultReward": 0.0,
        "rewardAggregation": "earliest",
        "explorationPercentage": 0.05,
        "modelExportFrequency": "PT1S",
        "modelRetrainDays": 0,
        "logMirrorEnabled": False,
        "logRetentionDays": -1,
        "lastConfigurationEditDate": configuration["lastConfigurationEditDate"],
        "learningMode": "Online",
        "isAutoOptimizationEnabled": False,
    }
    assert configuration["lastConfigurationEditDate"].endswith("Z")


def test_updating_the_service_configuration_updates_the_settings(loop):
    """Each field lands in its settings key, through one logged settings update."""
    admin = loop.admin()
    configuration = admin.get_service_configuration()
    answer = admin.update_service_configuration(
        {
            **configuration,
            "rewardWaitTime": "PT10M",
            "defaultReward": -0.1,
            "rewardAggregation": "sum",
            "explorationPercentage": 0.2,
            "learningMode": "Apprentice",
        }
    )
    assert answer["rewardWaitTime"] == "PT10M" and answer["learningMode"] == "Apprentice"
    assert answer["lastConfigurationEditDate"] > configuration["lastConfigurationEditDate"]
    settings = loop.settings()
    assert settings["reward"]["wait_seconds"] == 600
    assert settings["reward"]["default"] == -0.1
    assert settings["personalizer"]["reward_aggregation"] == "sum"
    # squarecb has no exploration percentage: Personalizer's is epsilon-greedy's.
    assert settings["exploration"]["algorithm"] == "epsilon"
    assert settings["exploration"]["epsilon"] == 0.2
    assert settings["automation"] == "manual"
    assert admin.get_service_configuration() == answer
    activities = loop.client.get(
        f"{BASE}/{loop.config_id}/activities?type=config.updated", headers=loop.tenant.headers
    ).get_json()
    assert activities


@pytest.mark.parametrize(
    ("mode", "auto", "automation"),
    [
        ("Online", False, "assisted"),
        ("Online", True, "autonomous"),
        ("Apprentice", False, "manual"),
    ],
)
def test_learning_modes_map_to_automation_levels(loop, mode, auto, automation):
    admin = loop.admin()
    configuration = admin.get_service_configuration()
    admin.update_service_configuration(
        {**configuration, "learningMode": mode, "isAutoOptimizationEnabled": auto}
    )
    assert loop.settings()["automation"] == automation
    again = admin.get_service_configuration()
    assert (again["learningMode"], again["isAutoOptimizationEnabled"]) == (mode, auto)


def test_an_unchanged_round_trip_changes_nothing(loop):
    """GET then PUT of the same object: no settings change (the algorithm stays)."""
    admin = loop.admin()
    before = loop.settings()
    admin.update_service_configuration(admin.get_service_configuration())
    assert loop.settings() == before


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"logRetentionDays": 30}, "InvalidLogRetentionDays"),
        ({"learningMode": "LoggingOnly"}, "InvalidLearningModeServiceConfiguration"),
        ({"learningMode": "Sometimes"}, "InvalidLearningModeServiceConfiguration"),
        (
            {"learningMode": "Apprentice", "isAutoOptimizationEnabled": True},
            "InvalidServiceConfiguration",
        ),
        ({"rewardWaitTime": "ten minutes"}, "InvalidRewardWaitTime"),
        ({"rewardWaitTime": "PT0.5S"}, "InvalidRewardWaitTime"),
        ({"rewardWaitTime": "P90D"}, "InvalidServiceConfiguration"),
        ({"explorationPercentage": 1.5}, "InvalidServiceConfiguration"),
        ({"rewardAggregation": "average"}, "InvalidServiceConfiguration"),
        ({"defaultReward": "zero"}, "InvalidServiceConfiguration"),
        ({"logMirrorEnabled": True}, "InvalidServiceConfiguration"),
    ],
)
def test_values_hpe_cannot_take_are_400s(loop, change, code):
    admin = loop.admin()
    before = loop.settings()
    with pytest.raises(HttpResponseError) as raised:
        admin.update_service_configuration({**admin.get_service_configuration(), **change})
    assert_personalizer_error(raised.value, 400, code)
    assert loop.settings() == before


def test_the_policy_is_the_exploration_as_vw_arguments(loop):
    assert loop.admin().get_policy() == {"name": "HPE squarecb", "arguments": DEFAULT_POLICY}


def test_a_personalizer_policy_sets_the_exploration(loop):
    """Personalizer's default learning settings, less its interactions, are epsilon-greedy."""
    admin = loop.admin()
    answer = admin.update_policy(
        {
            "name": "custom",
            "arguments": "--cb_explore_adf --epsilon 0.2 --power_t 0 -l 0.001 --cb_type mtr",
        }
    )
    assert answer == {
        "name": "HPE epsilon",
        "arguments": "--cb_explore_adf --cb_type mtr --quiet -b 18 -q ca -l 0.001 "
        "--power_t 0.0 --epsilon 0.2",
    }
    exploration = loop.settings()["exploration"]
    assert (exploration["algorithm"], exploration["epsilon"]) == ("epsilon", 0.2)
    assert (exploration["learning_rate"], exploration["power_t"]) == (0.001, 0.0)
    assert admin.get_policy() == answer
    admin.update_policy({"name": "bag", "arguments": "--cb_explore_adf --bag 7 --epsilon=0.1"})
    assert loop.settings()["exploration"]["bag_size"] == 7


def test_resetting_the_policy_restores_hpe_defaults(loop):
    admin = loop.admin()
    admin.update_policy({"name": "x", "arguments": "--cb_explore_adf --cover 3"})
    assert admin.reset_policy() == {"name": "HPE squarecb", "arguments": DEFAULT_POLICY}
    assert loop.settings()["exploration"]["algorithm"] == "squarecb"


@pytest.mark.parametrize(
    "arguments",
    [
        "--epsilon 0.2",  # not --cb_explore_adf
        "--cb_explore_adf -q ::",  # Personalizer's interactions: HPE fixes -q ca
        "--cb_explore_adf --cb_type ips",
        "--cb_explore_adf --ignore x",
        "--cb_explore_adf --squarecb --bag 3",
        "--cb_explore_adf --epsilon",
        "--cb_explore_adf --epsilon lots",
        "--cb_explore_adf --epsilon 2",  # out of the schema's range
        "--cb_explore_adf --epsilon 0.1 --epsilon 0.2",
        "--cb_explore_adf --gamma_scale 3",
        "--cb_explore_adf --bag 1.5",
    ],
)
def test_vw_arguments_hpe_does_not_take_are_400s(loop, arguments):
    admin = loop.admin()
    with pytest.raises(HttpResponseError) as raised:
        admin.update_policy({"name": "x", "arguments": arguments})
    assert_personalizer_error(raised.value, 400, "InvalidPolicyConfiguration")
    assert admin.get_policy()["arguments"] == DEFAULT_POLICY


def test_the_settings_block_is_validated(loop):
    """personalizer.* goes through the settings schema like every block."""
    response = loop.client.patch(
        f"{BASE}/{loop.config_id}",
        json={"settings": {"personalizer": {"reward_aggregation": "max", "extra": 1}}},
        headers=loop.tenant.headers,
    )
    assert response.status_code == 422
    errors = response.get_json()["errors"]["settings"]["personalizer"]
    assert set(errors) == {"reward_aggregation", "extra"}
