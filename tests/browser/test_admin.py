"""The admin pages in a real browser: people, API keys, webhook secrets, channel settings
and consent. Each form path, what is shown once, confirmations, errors beside their
field, role limits; every page screenshotted and scanned with axe-core."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from hpe_core.decide import consent
from hpe_core.deliver import channels as channel_settings
from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import people
from tests.browser.conftest import PASSWORD_COST, assert_accessible, shoot, sign_in, wait_ready
from tests.conftest import BASE
from web.extensions import app_runtime

pytestmark = pytest.mark.slow


@pytest.fixture
def admin(team):
    team.person("admin@example.com", Role.ADMIN)
    team.person("viewer@example.com", Role.VIEWER)
    return "admin@example.com"


def _open_admin(page, live_server, tab: str) -> None:
    """Sign in as the admin, follow the Admin link, then the tab."""
    sign_in(page, live_server, "admin@example.com")
    page.get_by_test_id("nav-admin").click()
    expect(page).to_have_url(f"{live_server}/dashboard/admin/people")
    page.get_by_role("navigation", name="Admin").get_by_role("link", name=tab).click()
    wait_ready(page)


def _error_beside(page, field_id: str):
    """The field's error message: the input names it (``aria-describedby``) and it sits
    right above the input, on the page."""
    error = page.get_by_test_id("field-error").and_(page.locator(f"[id='{field_id}-error']"))
    expect(error).to_have_count(1)
    field = page.locator(f"[id='{field_id}']")
    expect(field).to_have_attribute("aria-describedby", f"{field_id}-error")
    message, box = error.bounding_box(), field.bounding_box()
    assert 0 <= box["y"] - (message["y"] + message["height"]) < 40, (message, box)
    return error


def test_people_are_added_with_a_password_shown_once(page, live_app, live_server, admin):
    """Adding a person shows a working password once; a bad address is flagged beside
    the email field and adds nobody."""
    _open_admin(page, live_server, "People")
    expect(page.get_by_test_id("person-row")).to_have_count(2)
    shoot(page, "admin-people")
    assert_accessible(page)
    form = page.get_by_test_id("add-person")
    form.get_by_label("Email").fill("not an address")
    form.get_by_test_id("add").click()
    expect(_error_beside(page, "email")).to_have_text("Not an email address.")
    expect(page.get_by_test_id("error-summary")).to_be_visible()
    expect(page.get_by_test_id("person-row")).to_have_count(2)
    shoot(page, "admin-people-error")
    assert_accessible(page)
    form.get_by_label("Email").fill("cleo@example.com")
    form.get_by_label("Viewer").check()
    form.get_by_test_id("add").click()
    password = page.get_by_test_id("new-password").inner_text()
    expect(page.get_by_test_id("person-added")).to_contain_text("cleo@example.com as viewer")
    shoot(page, "admin-people-added")
    assert_accessible(page)
    with app_runtime(live_app).sessions() as session:
        cleo = people.sign_in(session, "cleo@example.com", password, password_cost=PASSWORD_COST)
        assert cleo.role is Role.VIEWER
    page.goto(f"{live_server}/dashboard/admin/people")
    expect(page.get_by_test_id("person-row")).to_have_count(3)
    assert password not in page.content()


def test_roles_change_passwords_reset_and_people_are_disabled(page, live_app, live_server, admin):
    """Change a role; reset a password (confirmed, new one shown once); disable
    (confirmed): each is the admin's activity."""
    _open_admin(page, live_server, "People")
    row = page.get_by_test_id("person-row").filter(has_text="viewer@example.com")
    row.get_by_label("Role of viewer@example.com").select_option("editor")
    row.get_by_test_id("change-role").click()
    expect(page.get_by_role("status")).to_contain_text("viewer@example.com is now editor.")
    row = page.get_by_test_id("person-row").filter(has_text="viewer@example.com")
    expect(row.get_by_label("Role of viewer@example.com")).to_have_value("editor")
    row.get_by_test_id("reset-password").click()
    expect(page.get_by_test_id("confirm-reset-password")).to_contain_text(
        "Give viewer@example.com a new password?"
    )
    shoot(page, "admin-people-reset-confirm")
    assert_accessible(page)
    page.get_by_test_id("confirm").click()
    password = page.get_by_test_id("new-password").inner_text()
    with app_runtime(live_app).sessions() as session:
        assert (
            people.sign_in(
                session, "viewer@example.com", password, password_cost=PASSWORD_COST
            ).role
            is Role.EDITOR
        )
        session.commit()
    row = page.get_by_test_id("person-row").filter(has_text="viewer@example.com")
    row.get_by_test_id("disable").click()
    expect(page.get_by_test_id("confirm-disable")).to_contain_text("Disable viewer@example.com?")
    page.get_by_test_id("cancel").click()  # cancel changes nothing
    expect(page.get_by_test_id("person-row").filter(has_text="viewer@example.com")).to_contain_text(
        "active"
    )
    page.get_by_test_id("person-row").filter(has_text="viewer@example.com").get_by_test_id(
        "disable"
    ).click()
    page.get_by_test_id("confirm").click()
    expect(page.get_by_role("status")).to_contain_text("Disabled viewer@example.com")
    row = page.get_by_test_id("person-row").filter(has_text="viewer@example.com")
    expect(row).to_contain_text("disabled")
    expect(row.get_by_test_id("disable")).to_have_count(0)
    # The admin's own row offers neither action.
    me = page.get_by_test_id("person-row").filter(has_text="admin@example.com")
    expect(me.get_by_test_id("disable")).to_have_count(0)
    expect(me.get_by_test_id("reset-password")).to_have_count(0)


def test_a_key_is_shown_once_works_and_is_revoked_after_a_confirmation(
    page, live_app, live_server, admin
):
    """Create a publishable key: shown once, accepted by the API; a too-long name is
    flagged beside its field; revoking asks first, then the API refuses the key."""
    _open_admin(page, live_server, "API keys")
    expect(page.get_by_test_id("no-keys")).to_be_visible()
    shoot(page, "admin-keys-empty")
    assert_accessible(page)
    form = page.get_by_test_id("create-key")
    form.get_by_label("Name").fill("n" * 201)
    form.get_by_test_id("create").click()
    expect(_error_beside(page, "name")).to_have_text("At most 200 characters.")
    shoot(page, "admin-keys-error")
    assert_accessible(page)
    form.get_by_label("Name").fill("shop pages")
    form.get_by_label("Publishable").check()
    form.get_by_test_id("create").click()
    key = page.get_by_test_id("new-key").inner_text()
    assert re.fullmatch(r"hpe_pk_[A-Za-z0-9_-]{40,}", key)
    shoot(page, "admin-keys-created")
    assert_accessible(page)
    client = live_app.test_client()
    config = client.get(f"{BASE}/channels", headers={"Authorization": f"Bearer {key}"})
    assert config.status_code == 403  # a publishable key: known, but not for this endpoint
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="API keys").click()
    assert key not in page.content()
    row = page.get_by_test_id("key-row").filter(has_text=key[:15])
    expect(row.get_by_test_id("key-status")).to_have_text("active")
    row.get_by_test_id("revoke").click()
    expect(page.get_by_test_id("confirm-revoke")).to_contain_text(
        f"Revoke the publishable key {key[:15]}… (shop pages)?"
    )
    shoot(page, "admin-keys-revoke-confirm")
    assert_accessible(page)
    page.get_by_test_id("confirm").click()
    expect(page.get_by_role("status")).to_contain_text(f"Revoked {key[:15]}")
    expect(
        page.get_by_test_id("key-row").filter(has_text=key[:15]).get_by_test_id("key-status")
    ).to_contain_text("revoked")
    revoked = client.get(f"{BASE}/channels", headers={"Authorization": f"Bearer {key}"})
    assert revoked.status_code == 401


def test_webhook_secrets_are_shown_once_and_rotate(page, live_app, live_server, admin):
    """The first secret is shown once; rotating with a bad grace period is flagged beside
    it; with 0 hours the old secret expires at once."""
    _open_admin(page, live_server, "Webhook secrets")
    expect(page.get_by_test_id("no-secrets")).to_be_visible()
    shoot(page, "admin-webhooks-empty")
    assert_accessible(page)
    page.get_by_test_id("create-secret").get_by_test_id("create").click()
    secret = page.get_by_test_id("new-secret").inner_text()
    assert secret.startswith("whsec_")
    shoot(page, "admin-webhooks-created")
    assert_accessible(page)
    form = page.get_by_test_id("create-secret")
    form.get_by_label("Grace period, hours").fill("forever")
    form.get_by_test_id("create").click()
    expect(_error_beside(page, "grace_hours")).to_have_text("Enter a number of hours.")
    assert_accessible(page)
    form.get_by_label("Grace period, hours").fill("0")
    form.get_by_test_id("create").click()
    newer = page.get_by_test_id("new-secret").inner_text()
    assert newer != secret and secret not in page.content()
    rows = page.get_by_test_id("secret-row")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("live")
    expect(rows.nth(1)).to_contain_text("expired")
    shoot(page, "admin-webhooks")


def test_channel_settings_are_validated_by_the_channel(page, live_app, live_server, admin):
    """The web channel's allowed origins: a bad origin is flagged beside the field and
    nothing is saved; good ones are saved and listed."""
    _open_admin(page, live_server, "Channels")
    expect(page.get_by_test_id("channel-row")).to_have_count(3)
    shoot(page, "admin-channels")
    assert_accessible(page)
    page.get_by_test_id("channel-row").filter(has_text="web").get_by_test_id("edit-channel").click()
    field = page.get_by_label("Allowed origins")
    field.fill("https://shop.example\nshop.example")
    shoot(page, "admin-channel-web")
    assert_accessible(page)
    page.get_by_test_id("save").click()
    expect(_error_beside(page, "allowed_origins")).to_contain_text(
        "shop.example: An origin is scheme://host[:port]"
    )
    expect(page.get_by_label("Allowed origins")).to_have_value("https://shop.example\nshop.example")
    shoot(page, "admin-channel-web-error")
    assert_accessible(page)
    with app_runtime(live_app).sessions() as session:
        assert channel_settings.get_settings(session, "acme", "web") == {}
    page.get_by_label("Allowed origins").fill("https://shop.example\nhttps://m.shop.example")
    page.get_by_test_id("save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved the web channel's settings.")
    expect(page.get_by_test_id("channel-row").filter(has_text="web")).to_contain_text(
        "https://shop.example, https://m.shop.example"
    )
    with app_runtime(live_app).sessions() as session:
        assert channel_settings.get_settings(session, "acme", "web") == {
            "allowed_origins": ["https://shop.example", "https://m.shop.example"]
        }


def test_consent_is_looked_up_and_changed_after_a_confirmation(page, live_app, live_server, admin):
    """Look up a user (subscribed by default), unsubscribe them after confirming; an
    empty user id is flagged beside its field."""
    _open_admin(page, live_server, "Consent")
    shoot(page, "admin-consent-empty")
    assert_accessible(page)
    lookup = page.get_by_test_id("consent-lookup")
    lookup.get_by_label("Channel").select_option("email")
    lookup.get_by_test_id("look-up").click()
    expect(_error_beside(page, "user_id")).to_contain_text("Enter the user id")
    assert_accessible(page)
    page.get_by_test_id("consent-lookup").get_by_label("User id").fill("user-42")
    page.get_by_test_id("consent-lookup").get_by_test_id("look-up").click()
    expect(page.get_by_test_id("consent-status")).to_have_text("subscribed")
    shoot(page, "admin-consent")
    assert_accessible(page)
    change = page.get_by_test_id("consent-change")
    change.get_by_label("Unsubscribed").check()
    change.get_by_test_id("change-consent").click()
    expect(page.get_by_test_id("confirm-consent")).to_contain_text(
        "Record user-42 as unsubscribed on email?"
    )
    shoot(page, "admin-consent-confirm")
    assert_accessible(page)
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("consent-status")).to_have_text("unsubscribed")
    expect(page.get_by_test_id("consent-result")).to_contain_text("user:admin@example.com")
    with app_runtime(live_app).sessions() as session:
        assert not consent.allowed(session, "acme", "email", "user-42")


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR])
def test_only_admins_reach_the_admin_pages(page, live_server, team, role):
    """Viewers and editors see no Admin link, and a typed-in admin URL is a 403 page."""
    team.person("someone@example.com", role)
    sign_in(page, live_server, "someone@example.com")
    wait_ready(page)
    expect(page.get_by_test_id("nav-admin")).to_have_count(0)
    for path in ("people", "keys", "webhooks", "channels", "consent", "survey"):
        answer = page.goto(f"{live_server}/dashboard/admin/{path}")
        assert answer.status == 403, path
    expect(page.get_by_role("heading", name="You may not do that")).to_be_visible()
    shoot(page, f"admin-forbidden-{role}")
    assert_accessible(page)
