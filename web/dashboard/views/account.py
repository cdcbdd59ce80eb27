"""Signing in and out, and switching workspace."""

from __future__ import annotations

import threading
import time
from collections import deque

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from hpe_core.errors import NotFound, RateLimited, Unauthorized
from hpe_core.tenancy import people
from web.dashboard import sessions
from web.dashboard.sessions import current_person, requires, safe_next
from web.extensions import app_state, db_session

#: Failed sign-ins one address (IP) may make in the window before it must wait: the
#: per-account lock stops guessing one password; this stops trying many accounts.
IP_FAILURES = 20
IP_WINDOW_SECONDS = 300.0


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/login", "login", login, methods=["GET", "POST"])
    blueprint.add_url_rule("/logout", "logout", logout, methods=["POST"])
    blueprint.add_url_rule("/workspace", "switch_workspace", switch_workspace, methods=["POST"])


def login():
    """``/dashboard/login``: email and password; a wrong one stays here with an error."""
    target = request.values.get("next") or ""
    target = target if safe_next(target) else url_for("dashboard.overview")
    if request.method == "GET":
        if current_person() is not None:
            return redirect(target)
        return render_template("login.html", next=target, email="", error=None)
    email = request.form.get("email", "")
    error, status, headers = _sign_in(email, request.form.get("password", ""))
    if error is None:
        return redirect(target)
    return render_template("login.html", next=target, email=email, error=error), status, headers


def _sign_in(email: str, password: str) -> tuple[str | None, int, dict]:
    """Sign in (and begin the session); on failure the message, status and headers."""
    limiter = _ip_limiter()
    address = request.remote_addr or "?"
    wait = limiter.wait(address)
    if wait:
        return _too_many(wait)
    session = db_session()
    try:
        person = people.sign_in(
            session, email, password, password_cost=current_app.config["PASSWORD_HASH_COST"]
        )
    except Unauthorized as exc:
        session.commit()  # the failure count and the activity are kept
        limiter.failed(address)
        return exc.message, 200, {}
    except RateLimited as exc:
        return _too_many(exc.retry_after)
    session.commit()
    sessions.begin(person)
    return None, 200, {}


def _too_many(seconds: float) -> tuple[str, int, dict]:
    seconds = max(1, round(seconds))
    message = f"Too many failed sign-ins. Try again in {seconds} second{'s' * (seconds != 1)}."
    return message, 429, {"Retry-After": str(seconds)}


@requires()
def logout():
    sessions.end()
    return redirect(url_for("dashboard.login"))


@requires()
def switch_workspace():
    """Act in another of the person's workspaces (the header's workspace menu)."""
    person = current_person()
    try:
        person = people.switch_workspace(db_session(), person, request.form.get("workspace", ""))
    except NotFound:
        return redirect(url_for("dashboard.overview"))
    sessions.begin(person)
    return redirect(url_for("dashboard.overview"))


class _FailureWindow:
    """Failed sign-ins per client address in a sliding window (this process only: the
    per-account lock in the database is the limit that holds across processes)."""

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, address: str) -> float:
        """Seconds ``address`` must wait before trying again (0: it may try now)."""
        now = time.monotonic()
        with self._lock:
            failures = self._failures.get(address)
            if not failures:
                return 0.0
            while failures and now - failures[0] > self.window:
                failures.popleft()
            if len(failures) < self.limit:
                return 0.0
            return self.window - (now - failures[0])

    def failed(self, address: str) -> None:
        with self._lock:
            if len(self._failures) > 10_000:  # bounded, whatever addresses arrive
                self._failures.clear()
            self._failures.setdefault(address, deque()).append(time.monotonic())


def make_sign_in_limiter() -> _FailureWindow:
    return _FailureWindow(IP_FAILURES, IP_WINDOW_SECONDS)


def _ip_limiter() -> _FailureWindow:
    return app_state().sign_in_limiter
