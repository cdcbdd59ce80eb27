"""The app's secret key (issue 15, finding 1): never a known key, generated and kept for
the embedded default, required in production, rotated with fallbacks."""

from __future__ import annotations

import datetime as dt
import stat
import threading
import uuid

import pytest

from hpe_core import secret_keys
from hpe_core.deliver.tracking_links import TrackingLinks
from hpe_core.errors import Forbidden, InvalidInput
from hpe_core.learn.outcome_tokens import OutcomeTokens
from hpe_core.secret_keys import SecretKeyError, SecretKeys

OLD = "old-key-" + "o" * 40
NEW = "new-key-" + "n" * 40
NOW = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)


def _settings(tmp_path, **values) -> dict:
    settings = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'hpe.db'}",
        "REDIS_URL": None,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": None,
        "SECRET_KEY_FALLBACKS": [],
    }
    settings.update(values)
    return settings


def test_the_embedded_default_generates_a_strong_key_once_and_keeps_it(tmp_path):
    """No key on SQLite: one is generated in instance/secret_key (0600), then reused."""
    first = _settings(tmp_path)
    secret_keys.settle(first)
    path = tmp_path / "instance" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first["SECRET_KEY"]) >= 64
    assert first["SECRET_KEY"] not in secret_keys.PUBLIC_KEYS
    again = _settings(tmp_path)
    secret_keys.settle(again)
    assert again["SECRET_KEY"] == first["SECRET_KEY"]
    other = _settings(tmp_path / "elsewhere")
    secret_keys.settle(other)
    assert other["SECRET_KEY"] != first["SECRET_KEY"]


def test_processes_starting_together_share_one_generated_key(tmp_path):
    """Several processes on one instance folder: the first writer wins, all read its key."""
    found: list[str] = []

    def settle():
        settings = _settings(tmp_path)
        secret_keys.settle(settings)
        found.append(settings["SECRET_KEY"])

    threads = [threading.Thread(target=settle) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1
    assert sorted(p.name for p in (tmp_path / "instance").iterdir()) == ["secret_key"]


@pytest.mark.parametrize(
    "production",
    [
        {"DATABASE_URL": "postgresql+psycopg://hpe@db/hpe"},
        {"REDIS_URL": "redis://127.0.0.1:6379/0"},
    ],
)
def test_production_refuses_to_start_without_a_key(tmp_path, production):
    """PostgreSQL or Redis configured and no HPE_SECRET_KEY: refused, nothing generated."""
    with pytest.raises(SecretKeyError, match="HPE_SECRET_KEY is not set"):
        secret_keys.settle(_settings(tmp_path, **production))
    assert not (tmp_path / "instance").exists()
    settings = _settings(tmp_path, SECRET_KEY=NEW, **production)
    secret_keys.settle(settings)
    assert settings["SECRET_KEY"] == NEW


@pytest.mark.parametrize("key", ["dev-only-change-me", "hpe-test-kit", "short-key"])
def test_known_or_short_keys_are_refused_everywhere(tmp_path, key):
    """The old default and keys under 32 characters sign nothing, embedded or not."""
    with pytest.raises(SecretKeyError):
        secret_keys.settle(_settings(tmp_path, SECRET_KEY=key))
    with pytest.raises(SecretKeyError):
        secret_keys.settle(
            _settings(tmp_path, SECRET_KEY=key, DATABASE_URL="postgresql+psycopg://h/hpe")
        )


def test_the_public_default_may_not_even_be_a_fallback(tmp_path):
    """Rotating away from the published default must not keep it verifying."""
    with pytest.raises(SecretKeyError, match="FALLBACKS"):
        secret_keys.settle(
            _settings(tmp_path, SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=["dev-only-change-me"])
        )
    settings = _settings(tmp_path, SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=OLD)
    secret_keys.settle(settings)
    assert settings["SECRET_KEY_FALLBACKS"] == [OLD]  # one key as a plain string


def test_tracking_links_rotate(tmp_path):
    """Links signed with the old key verify after a rotation; new links use the new key;
    a key dropped from the fallbacks verifies nothing."""
    decision_id = uuid.uuid4()
    old_link = TrackingLinks(OLD, None).token("unsubscribe", decision_id)
    rotated = TrackingLinks(SecretKeys(NEW, [OLD]), None)
    assert rotated.verify("unsubscribe", old_link) == (decision_id, None)
    new_link = rotated.token("unsubscribe", decision_id)
    assert new_link != old_link
    assert TrackingLinks(NEW, None).verify("unsubscribe", new_link) == (decision_id, None)
    with pytest.raises(InvalidInput):
        TrackingLinks(NEW, None).verify("unsubscribe", old_link)


def test_outcome_tokens_rotate_and_expire():
    """An outcome token verifies under the ring that signed it or a later one, until it
    expires; a token made under another key does not."""
    decision_id = uuid.uuid4()
    token = OutcomeTokens(OLD).issue(decision_id, NOW)
    assert OutcomeTokens(SecretKeys(NEW, [OLD])).verify(token, now=NOW, max_age=60) == decision_id
    with pytest.raises(Forbidden, match="expired"):
        OutcomeTokens(OLD).verify(token, now=NOW + dt.timedelta(seconds=61), max_age=60)
    with pytest.raises(Forbidden, match="Invalid"):
        OutcomeTokens(NEW).verify(token, now=NOW, max_age=60)
    body, _, signature = token.partition(".")
    other = OutcomeTokens(OLD).issue(uuid.uuid4(), NOW)
    for forged in (f"{other.partition('.')[0]}.{signature}", f"{body}.", "x", "é.é", ""):
        with pytest.raises(Forbidden):
            OutcomeTokens(OLD).verify(forged, now=NOW, max_age=60)


def test_nonces_name_their_key_so_derived_secrets_survive_a_rotation():
    """A nonce made under the old key derives with the old key while it is a fallback,
    and with nothing once it is dropped; a nonce from before this scheme tries every key."""
    nonce = SecretKeys(OLD).new_nonce()
    assert SecretKeys(NEW, [OLD]).keys_for_nonce(nonce) == (OLD,)
    assert SecretKeys(NEW, [OLD]).key_for_nonce(nonce) == OLD
    assert SecretKeys(NEW).keys_for_nonce(nonce) == ()
    assert SecretKeys(NEW).key_for_nonce(nonce) is None
    legacy = "q" * 43  # secrets.token_urlsafe(32): no key id
    assert SecretKeys(NEW, [OLD]).keys_for_nonce(legacy) == (NEW, OLD)
    assert len(nonce) <= 64  # the nonce columns are VARCHAR(64)
