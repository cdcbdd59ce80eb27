"""Configurations created, edited, tried and run entirely in the browser."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import workspaces
from hpe_core.tenancy.settings import validate_settings
from tests.browser.conftest import assert_accessible, shoot, sign_in, wait_ready
from tests.conftest import BASE
from web.extensions import app_runtime

pytestmark = pytest.mark.slow


@pytest.fixture
def api(live_app, team):
    """An API client with a secret key of workspace acme (where the people are)."""
    team.person("editor@example.com", Role.EDITOR)
    with app_runtime(live_app).sessions() as session:
        _row, key = workspaces.create_key(session, "acme")
        session.commit()
    client, headers = live_app.test_client(), {"Authorization": f"Bearer {key}"}

    def call(method, path, **kwargs):
        return getattr(client, method)(f"{BASE}{path}", headers=headers, **kwargs)

    return call


def _config_id(page) -> str:
    return re.search(r"/configs/([0-9a-f-]{36})/", page.url).group(1)


def test_a_configuration_created_in_the_form_is_what_the_api_returns(
    page, live_server, api, backend
):
    """Every guided field lands in the stored settings, defaults filled as the API does."""
    sign_in(page, live_server, "editor@example.com")
    page.get_by_test_id("new-config").click()
    wait_ready(page)
    assert_accessible(page)
    page.locator("input[name=name]").fill("Winter sale")
    page.locator("input[name=channels][value=ads]").uncheck()
    page.locator("input[name='actions.0.id']").fill("boots")
    page.locator("input[name='actions.0.features.0.key']").fill("category")
    page.locator("input[name='actions.0.features.0.value']").fill("footwear")
    page.get_by_role("button", name="Add a content field").click()
    page.locator("input[name='actions.0.content.0.key']").fill("subject")
    page.locator("input[name='actions.0.content.0.value']").fill("Boots for winter")
    page.get_by_test_id("add-offer").click()
    page.locator("input[name='actions.1.id']").fill("scarves")
    page.locator("input[name='actions.1.cost']").fill("0.5")
    page.locator("input[name='actions.1.channels'][value=email]").check()
    page.get_by_label("Holdout percent").fill("20")
    page.get_by_label("autonomous").check()
    page.get_by_role("button", name="Add a frequency cap").click()
    page.locator("select[name='guardrails.frequency_caps.0.channel']").select_option("email")
    page.locator("input[name='guardrails.frequency_caps.0.max']").fill("2")
    page.locator("input[name='guardrails.frequency_caps.0.per_hours']").fill("24")
    page.get_by_label("Target lift").fill("0.3")
    shoot(page, f"config-new-{backend}")
    page.get_by_test_id("save").click()
    expect(page.get_by_role("status")).to_have_text("Configuration created.")
    stored = api("get", f"/{_config_id(page)}").get_json()
    expected = validate_settings(
        {
            "channels": ["email", "web"],
            "actions": [
                {
                    "id": "boots",
                    "features": {"category": "footwear"},
                    "content": {"subject": "Boots for winter"},
                },
                {"id": "scarves", "cost": 0.5, "channels": ["email"]},
            ],
            "holdout": {"percent": 20},
            "automation": "autonomous",
            "guardrails": {"frequency_caps": [{"channel": "email", "max": 2, "per_hours": 24}]},
            "goals": {"target_lift": 0.3},
        }
    )
    assert stored["name"] == "Winter sale"
    assert stored["settings"] == json.loads(json.dumps(expected))


def test_an_invalid_field_is_shown_beside_its_input_and_nothing_is_saved(page, live_server, api):
    """A holdout of 80% is refused by the API's own validation, next to the field."""
    sign_in(page, live_server, "editor@example.com")
    page.goto(f"{live_server}/dashboard/configs/new")
    page.locator("input[name=name]").fill("Too big a holdout")
    page.locator("input[name='actions.0.id']").fill("boots")
    page.get_by_label("Holdout percent").fill("80")
    page.get_by_test_id("save").click()
    holdout = page.locator(".field", has=page.get_by_label("Holdout percent"))
    expect(holdout.get_by_test_id("field-error")).to_have_text("Must be above 0 and at most 50.")
    expect(page.get_by_test_id("error-summary")).to_contain_text("holdout.percent")
    expect(page.get_by_label("Holdout percent")).to_have_value("80")
    shoot(page, "config-invalid")
    assert_accessible(page)
    assert api("get", "/").get_json() == []


def test_an_edit_changes_one_block_only(page, live_server, api):
    """Changing the holdout in the form changes exactly settings.holdout.percent."""
    created = api(
        "post",
        "/",
        json={
            "name": "Spring",
            "settings": {"actions": [{"id": "a", "features": {"x": 1}}, {"id": "b"}]},
        },
    ).get_json()
    sign_in(page, live_server, "editor@example.com")
    page.goto(f"{live_server}/dashboard/configs/{created['id']}/edit")
    wait_ready(page)
    page.get_by_label("Holdout percent").fill("15")
    page.get_by_test_id("save").click()
    expect(page.get_by_role("status")).to_have_text("Changes saved.")
    after = api("get", f"/{created['id']}").get_json()
    before = created["settings"]
    assert after["settings"]["holdout"]["percent"] == 15
    after["settings"]["holdout"]["percent"] = before["holdout"]["percent"]
    assert after["settings"] == before
    changes = api("get", f"/{created['id']}/activities").get_json()[0]
    assert changes["type"] == "config.updated" and changes["actor"] == "user:editor@example.com"
    assert list(changes["data"]["changes"]) == ["settings.holdout.percent"]
    # The change is in the activity trail, readable, with the person as the actor.
    page.goto(f"{live_server}/dashboard/configs/{created['id']}/activity?type=config.updated")
    row = page.get_by_test_id("activity-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("holdout.percent: 10.0 → 15")
    expect(row).to_contain_text("user:editor@example.com")
    shoot(page, "activity")
    assert_accessible(page)
    csv = page.request.get(
        f"{live_server}/dashboard/configs/{created['id']}/activity.csv?actor=user:editor@example.com"
    ).text()
    assert csv.splitlines()[0] == "time_utc,type,actor,summary,data" and len(csv.splitlines()) == 2


def test_the_json_view_saves_exactly_as_the_api(page, live_server, api):
    """The JSON view's name and settings_json create a configuration like POST /."""
    sign_in(page, live_server, "editor@example.com")
    page.goto(f"{live_server}/dashboard/configs/new")
    page.get_by_test_id("json-view").locator("summary").click()
    page.locator("input[name=name]").fill("From JSON")
    settings = {"actions": [{"id": "x"}, {"id": "y"}], "holdout": {"percent": 5}}
    page.locator("textarea[name=settings_json]").fill(json.dumps(settings))
    page.get_by_test_id("save-json").click()
    expect(page.get_by_role("status")).to_have_text("Configuration created.")
    stored = api("get", f"/{_config_id(page)}").get_json()
    expected = validate_settings(settings, channels=["ads", "email", "web"])
    assert stored["settings"] == json.loads(json.dumps(expected))
    page.get_by_test_id("json-view").locator("summary").click()
    page.locator("textarea[name=settings_json]").fill('{"holdout": {"percent": 99}}')
    page.get_by_test_id("save-json").click()
    expect(page.get_by_test_id("json-view").get_by_test_id("field-error").first).to_be_visible()


def test_try_it_shows_the_ranking_and_why_offers_were_left_out(page, live_server, api):
    """The dry run on the edit page ranks the eligible offers and explains the others."""
    created = api(
        "post",
        "/",
        json={
            "name": "Try",
            "settings": {
                "channels": ["email", "web"],
                "actions": [
                    {"id": "shoes"},
                    {"id": "hats", "channels": ["web"]},
                    {"id": "wine", "rules": [{"key": "age", "gte": 18}]},
                ],
            },
        },
    ).get_json()
    sign_in(page, live_server, "editor@example.com")
    page.goto(f"{live_server}/dashboard/configs/{created['id']}/edit")
    page.locator("#t-channel").select_option("email")
    page.locator("#t-context").fill('{"age": 16}')
    page.get_by_test_id("try").click()
    result = page.get_by_test_id("trial-result")
    expect(result).to_contain_text("shoes")
    expect(result).to_contain_text("hats: not offered on email (only web)")
    expect(result).to_contain_text("wine: its rule does not hold for this context: age >= 18")
    shoot(page, "config-try-it")
    assert api("get", f"/{created['id']}/metrics").get_json()["summary"]["decisions"] == {
        "treatment": 0,
        "holdout": 0,
    }


def test_pause_resume_and_deactivate_from_the_results_page(page, live_server, api):
    """The kill switch: paused configurations answer 409, resumed ones decide again."""
    created = api(
        "post", "/", json={"name": "Run", "settings": {"actions": [{"id": "a"}]}}
    ).get_json()
    decide = {"user_id": "u", "channel": "web"}
    sign_in(page, live_server, "editor@example.com")
    page.goto(f"{live_server}/dashboard/configs/{created['id']}")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("pause").click()
    expect(page.get_by_role("status")).to_contain_text("Paused")
    assert api("post", f"/{created['id']}/decisions", json=decide).status_code == 409
    page.get_by_test_id("resume").click()
    expect(page.get_by_role("status")).to_contain_text("Resumed")
    assert api("post", f"/{created['id']}/decisions", json=decide).status_code == 201
    page.get_by_test_id("deactivate").click()
    expect(page.get_by_role("status")).to_contain_text("Deactivated")
    assert api("get", f"/{created['id']}").get_json()["status"] == "INACTIVE"


def test_viewers_cannot_reach_the_forms(page, live_server, api, team):
    """No edit controls for a viewer, and the form URLs answer 403."""
    created = api(
        "post", "/", json={"name": "Ro", "settings": {"actions": [{"id": "a"}]}}
    ).get_json()
    team.person("viewer@example.com", Role.VIEWER)
    sign_in(page, live_server, "viewer@example.com")
    expect(page.get_by_test_id("new-config")).to_have_count(0)
    page.goto(f"{live_server}/dashboard/configs/{created['id']}")
    expect(page.get_by_test_id("config-actions")).to_have_count(0)
    assert page.goto(f"{live_server}/dashboard/configs/new").status == 403
    assert page.goto(f"{live_server}/dashboard/configs/{created['id']}/edit").status == 403


def test_admins_read_the_workspace_activity_including_sign_ins(page, live_server, api, team):
    """Sign-ins and people changes (no configuration) are in the workspace trail, for
    admins only; a configuration's change is there too, named."""
    api("post", "/", json={"name": "Named", "settings": {"actions": [{"id": "a"}]}})
    team.person("admin@example.com", Role.ADMIN)
    sign_in(page, live_server, "editor@example.com")
    assert page.goto(f"{live_server}/dashboard/admin/activity").status == 403
    page.get_by_test_id("sign-out").click()
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server}/dashboard/admin/activity")
    rows = page.get_by_test_id("activity-row")
    expect(
        rows.filter(has_text="person.signed_in").filter(has_text="user:admin@example.com")
    ).to_have_count(1)
    expect(rows.filter(has_text="config.created")).to_contain_text("Named")
    page.goto(f"{live_server}/dashboard/admin/activity?type=person.signed_in")
    expect(page.get_by_test_id("activity-row")).to_have_count(2)
    shoot(page, "admin-activity")
    assert_accessible(page)
