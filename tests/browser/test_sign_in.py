"""Signing in and out of the dashboard in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from hpe_core.store.vocabulary import Role
from tests.browser.conftest import assert_accessible, shoot, sign_in, wait_ready

pytestmark = pytest.mark.slow


def test_sign_in_with_the_right_password_reaches_the_overview(page, live_server, team, backend):
    """The right password lands on the overview, signed in, with a working sign-out."""
    team.person("ann@example.com", Role.ADMIN)
    page.goto(f"{live_server}/dashboard/")
    expect(page).to_have_url(re.compile(r"/dashboard/login\?next=/dashboard/"))
    wait_ready(page)
    shoot(page, "login")
    assert_accessible(page)
    sign_in(page, live_server, "ann@example.com")
    expect(page).to_have_url(f"{live_server}/dashboard/")
    expect(page.get_by_test_id("signed-in-as")).to_contain_text("ann@example.com")
    page.get_by_test_id("sign-out").click()
    expect(page).to_have_url(f"{live_server}/dashboard/login")
    page.goto(f"{live_server}/dashboard/")
    expect(page).to_have_url(re.compile(r"/dashboard/login"))


def test_a_wrong_password_stays_on_the_login_page_with_an_error(page, live_server, team):
    """A wrong password keeps the person on the login page, told why, address kept."""
    team.person("ann@example.com")
    sign_in(page, live_server, "ann@example.com", "not the password")
    expect(page).to_have_url(f"{live_server}/dashboard/login")
    expect(page.get_by_test_id("login-error")).to_have_text("Wrong email or password.")
    expect(page.get_by_label("Email")).to_have_value("ann@example.com")
    shoot(page, "login-wrong-password")
    assert_accessible(page)


def test_the_first_run_link_creates_the_admin_and_dies(page, live_app, live_server):
    """The setup link creates the first admin and workspace, signs in, and works once."""
    from hpe_core.tenancy import people
    from web.extensions import app_runtime

    with app_runtime(live_app).sessions() as session:
        token = people.issue_setup_token(session)
        session.commit()
    page.goto(f"{live_server}/dashboard/setup/{token}")
    wait_ready(page)
    assert_accessible(page)
    page.get_by_label("Your email").fill("founder@example.com")
    page.get_by_label("Choose a password").fill("short")
    page.get_by_label("Workspace id").fill("Not Valid")
    page.get_by_role("button", name="Create and sign in").click()
    expect(page.get_by_test_id("field-error")).to_have_count(2)
    shoot(page, "setup-errors")
    page.get_by_label("Choose a password").fill("a long enough password")
    page.get_by_label("Workspace id").fill("newco")
    page.get_by_role("button", name="Create and sign in").click()
    expect(page).to_have_url(f"{live_server}/dashboard/")
    expect(page.get_by_test_id("signed-in-as")).to_contain_text("admin")
    response = page.goto(f"{live_server}/dashboard/setup/{token}")
    assert response.status == 404
