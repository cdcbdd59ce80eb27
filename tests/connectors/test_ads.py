"""The ads channel: hashed audiences from delivered decisions, CSV upload to a local HTTP
server or a drop folder, normalization rules."""

from __future__ import annotations

import hashlib
import uuid

import pytest
import sqlalchemy as sa

from connectors.ads import audience
from hpe_core.errors import PermanentDeliveryError, TransientDeliveryError
from hpe_core.store.models import Delivery
from tests.connectors.conftest import channel_app, create_config, decide, new_tenant
from web.extensions import app_runtime

#: The local upload servers listen on loopback, which outbound requests may reach only
#: when the operator allows it (tests/connectors/test_outbound_requests.py).
LOOPBACK = ["127.0.0.1/32"]

ACTIONS = [
    {"id": "spring", "content": {"ads": {"audience": "spring-buyers"}}},
    {"id": "summer"},
]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" Ada@Example.ORG ", "ada@example.org"), ("not-an-email", None), (None, None)],
)
def test_emails_are_normalized(raw, expected):
    """Trimmed and lower-cased; anything that is not an address is dropped."""
    assert audience.normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("+49 (151) 234-5678", None, "+491512345678"),
        ("0049 151 2345678", None, "+491512345678"),
        ("0151 2345678", "49", "+491512345678"),
        ("0151 2345678", None, None),
        ("+1 23", None, None),
    ],
)
def test_phones_are_e164(raw, country, expected):
    """E.164 with the country code; a national number needs default_country_code."""
    assert audience.normalize_phone(raw, country) == expected


def test_formats_differ_in_phone_hashing():
    """Google hashes the phone with its '+', Meta without."""
    recipient = {"email": "A@B.example", "phone": "+15550100123"}
    google = audience.hashed_identifiers(recipient, "google", None)
    meta = audience.hashed_identifiers(recipient, "meta", None)
    assert google["email_sha256"] == meta["email_sha256"] == sha("a@b.example")
    assert google["phone_sha256"] == sha("+15550100123")
    assert meta["phone_sha256"] == sha("15550100123")


def _decide_many(app, client, tenant, config_id, people):
    for index, to in enumerate(people):
        response = decide(
            client,
            tenant,
            config_id,
            user_id=f"u{index}",
            channel="ads",
            candidates=["spring"],
            deliver={"to": to},
        )
        assert response.status_code == 201, response.get_json()
    app_runtime(app).jobs.run_pending_deliveries()


def test_audience_is_uploaded_as_hashed_csv(sqlite_url, tmp_path, http_server):
    """Deliveries keep only hashes; the export POSTs one deduplicated CSV per action."""
    app = channel_app(
        sqlite_url,
        tmp_path,
        ads={"upload_url": f"{http_server.url}/audiences", "upload_token": "tok"},
        _settings={"OUTBOUND_ALLOWED_NETWORKS": LOOPBACK},
    )
    client = app.test_client()
    tenant = new_tenant(app)
    config_id = create_config(client, tenant, ACTIONS, channels=("ads",))
    people = [
        {"email": "Ada@Example.org", "phone": "+44 20 7946 0958"},
        {"email": "ADA@example.org", "phone": "+442079460958"},  # the same person again
        {"email": "bob@example.org"},
    ]
    _decide_many(app, client, tenant, config_id, people)
    session = app_runtime(app).sessions()
    rows = list(session.scalars(sa.select(Delivery)))
    assert {r.status for r in rows} == {"sent"}
    assert all(r.recipient is None for r in rows)  # nothing in clear is kept
    assert rows[0].result["email_sha256"] == sha("ada@example.org")

    exported = app_runtime(app).channels["ads"].export_audiences(session, uuid.UUID(config_id))
    session.close()
    assert [(e["audience"], e["rows"]) for e in exported] == [("spring-buyers", 2), ("summer", 0)]
    first = http_server.requests[0]
    assert first["path"] == "/audiences"
    assert first["headers"]["authorization"] == "Bearer tok"
    assert first["headers"]["x-hpe-audience"] == "spring-buyers"
    lines = first["body"].decode().splitlines()
    assert lines[0] == "Email,Phone"
    assert f"{sha('ada@example.org')},{sha('+442079460958')}" in lines
    assert f"{sha('bob@example.org')}," in lines
    assert "example.org" not in first["body"].decode()
    app_runtime(app).engine.dispose()


def test_upload_errors_are_classified(sqlite_url, tmp_path, http_server):
    """429/5xx are transient (with Retry-After), other 4xx permanent."""
    app = channel_app(
        sqlite_url,
        tmp_path,
        ads={"upload_url": f"{http_server.url}/a"},
        _settings={"OUTBOUND_ALLOWED_NETWORKS": LOOPBACK},
    )
    connector = app_runtime(app).channels["ads"]
    http_server.responses += [(503, b"", {"Retry-After": "7"}), (400, b"bad", {})]
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    with pytest.raises(TransientDeliveryError) as transient:
        connector.ship("x", "Email,Phone\n", config_id=uuid.uuid4(), now=now)
    assert transient.value.retry_after == 7
    with pytest.raises(PermanentDeliveryError):
        connector.ship("x", "Email,Phone\n", config_id=uuid.uuid4(), now=now)
    app_runtime(app).engine.dispose()


def test_audience_drop_folder(sqlite_url, tmp_path):
    """Without an upload URL, the CSV is written (atomically) into drop_dir."""
    drop = tmp_path / "drop"
    app = channel_app(sqlite_url, tmp_path, ads={"drop_dir": str(drop), "format": "meta"})
    client = app.test_client()
    tenant = new_tenant(app)
    config_id = create_config(client, tenant, ACTIONS, channels=("ads",))
    _decide_many(app, client, tenant, config_id, [{"phone": "+15550100123"}])
    session = app_runtime(app).sessions()
    exported = app_runtime(app).channels["ads"].export_audiences(session, uuid.UUID(config_id))
    session.close()
    files = sorted(drop.glob("*.csv"))
    assert [f.name.split("-2")[0] for f in files] == ["spring-buyers", "summer"]
    assert files[0].read_text() == f"email,phone\n,{sha('15550100123')}\n"
    assert not list(drop.glob("*.tmp"))
    assert exported[0]["target"] == str(files[0])
    app_runtime(app).engine.dispose()


def test_recipient_without_identifiers_fails_permanently(sqlite_url, tmp_path):
    """No usable email or phone: the delivery fails at once."""
    app = channel_app(sqlite_url, tmp_path, ads={"drop_dir": str(tmp_path)})
    client = app.test_client()
    tenant = new_tenant(app)
    config_id = create_config(client, tenant, ACTIONS, channels=("ads",))
    _decide_many(
        app, client, tenant, config_id, [{"phone": "0151 2345678"}]
    )  # national, no country code
    session = app_runtime(app).sessions()
    [row] = list(session.scalars(sa.select(Delivery)))
    session.close()
    assert row.status == "failed" and "email or phone" in row.error
    app_runtime(app).engine.dispose()
