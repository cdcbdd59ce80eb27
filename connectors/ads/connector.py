"""The ads connector: audience membership per decision, CSV export and upload."""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from marshmallow import RAISE, Schema, fields, validate

from connectors.ads import audience
from hpe_core.deliver import delivery as delivery_service
from hpe_core.deliver.channels import Connector, HealthStatus
from hpe_core.deliver.delivery import Delivery, DeliveryResult
from hpe_core.errors import PermanentDeliveryError, TransientDeliveryError
from hpe_core.store.models import Config, utcnow
from hpe_core.tenancy.configs import settings_of


class AdsConfigSchema(Schema):
    """``PLUGINS["ads"]``: where audiences go. ``upload_token`` is best set from the
    environment: ``HPE_PLUGINS__ads__upload_token``."""

    class Meta:
        unknown = RAISE

    upload_url = fields.Url(schemes={"http", "https"}, require_tld=False, load_default=None)
    upload_token = fields.String(load_default=None, allow_none=True)
    drop_dir = fields.String(load_default=None, allow_none=True)
    audience_days = fields.Integer(load_default=30, validate=validate.Range(1, 540))
    format = fields.String(load_default="google", validate=validate.OneOf(audience.FORMATS))
    default_country_code = fields.String(
        load_default=None, allow_none=True, validate=validate.Regexp(r"^\d{1,3}\Z")
    )
    timeout = fields.Float(load_default=30.0, validate=validate.Range(0.1, 600))
    cost_per_decision = fields.Float(
        load_default=0.0,
        allow_nan=False,
        validate=validate.Range(min=0),
        metadata={"description": "Cost of one decision on this channel, for ROI"},
    )


class AdsRecipientSchema(Schema):
    """``deliver.to`` for an audience: the identifiers to hash (nothing in clear is kept)."""

    class Meta:
        unknown = RAISE

    email = fields.Email(validate=validate.Length(max=320))
    phone = fields.String(
        validate=validate.Length(3, 32),
        metadata={"description": "E.164, or national with PLUGINS.ads.default_country_code"},
    )


class AdsContentSchema(Schema):
    """``action.content.ads``."""

    class Meta:
        unknown = RAISE

    audience = fields.String(
        validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}\Z"),
        metadata={"description": "Audience name on the platform (default: the action id)"},
    )


class AdsConnector(Connector):
    name = "ads"
    description = "Ad audiences exported as hashed customer lists"
    config_schema = AdsConfigSchema
    content_schema = AdsContentSchema
    recipient_schema = AdsRecipientSchema

    def send(self, delivery: Delivery) -> DeliveryResult:
        ids = audience.hashed_identifiers(
            delivery.recipient,
            self.plugin_config["format"],
            self.plugin_config["default_country_code"],
        )
        if not any(ids.values()):
            raise PermanentDeliveryError(
                "No usable email or phone in deliver.to (a phone needs its country code)."
            )
        # Only the hashes are kept; the next export uploads them with the audience.
        return DeliveryResult(status="queued", detail=ids)

    def health(self) -> HealthStatus:
        if self.plugin_config["drop_dir"]:
            path = Path(self.plugin_config["drop_dir"])
            ok = path.is_dir() and os.access(path, os.W_OK)
            return HealthStatus(ok, f"drop folder {path} " + ("writable" if ok else "not writable"))
        if self.plugin_config["upload_url"]:
            return HealthStatus(True, f"uploads to {self.plugin_config['upload_url']}")
        return HealthStatus(False, "set PLUGINS.ads.upload_url or PLUGINS.ads.drop_dir")

    # --- export ------------------------------------------------------------------------

    def export_audiences(self, session, config_id: uuid.UUID, now: dt.datetime | None = None):
        """Build and ship one CSV per action of a configuration.

        :returns: ``[{"action_id", "audience", "rows", "target"}]``
        :raises TransientDeliveryError: the endpoint is down or throttling
        :raises PermanentDeliveryError: no destination, or the endpoint refused the list
        """
        now = now or utcnow()
        config = session.get(Config, config_id)
        if config is None:
            raise PermanentDeliveryError(f"No configuration {config_id}.")
        since = now - dt.timedelta(days=self.plugin_config["audience_days"])
        exported = []
        for action in settings_of(config).actions:
            if not action.offered_on(self.name):
                continue
            name = (action.content.get("ads") or {}).get("audience") or action.id
            rows = delivery_service.sent_results(session, config_id, self.name, action.id, since)
            text, count = audience.to_csv(rows, self.plugin_config["format"])
            target = self.ship(name, text, config_id=config_id, now=now)
            exported.append(
                {"action_id": action.id, "audience": name, "rows": count, "target": target}
            )
        return exported

    def ship(self, name: str, text: str, *, config_id: uuid.UUID, now: dt.datetime) -> str:
        """Upload (``upload_url``) or write (``drop_dir``) one audience CSV.

        :returns: where it went
        """
        if self.plugin_config["upload_url"]:
            return self._upload(name, text, config_id)
        if self.plugin_config["drop_dir"]:
            folder = Path(self.plugin_config["drop_dir"])
            folder.mkdir(parents=True, exist_ok=True)
            safe = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)
            path = folder / f"{safe}-{now:%Y%m%dT%H%M%SZ}.csv"
            # Write then rename: a watcher never picks up a half-written file.
            with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as tmp:
                tmp.write(text)
            os.replace(tmp.name, path)
            return str(path)
        raise PermanentDeliveryError("Set PLUGINS.ads.upload_url or PLUGINS.ads.drop_dir.")

    def _upload(self, name: str, text: str, config_id: uuid.UUID) -> str:
        url = self.plugin_config["upload_url"]
        headers = {
            "Content-Type": "text/csv; charset=utf-8",
            "X-HPE-Audience": name,
            "X-HPE-Config": str(config_id),
        }
        if self.plugin_config["upload_token"]:
            headers["Authorization"] = f"Bearer {self.plugin_config['upload_token']}"
        request = urllib.request.Request(url, data=text.encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.plugin_config["timeout"]) as reply:
                reply.read()
        except urllib.error.HTTPError as exc:
            message = f"Audience upload to {url} answered {exc.code}."
            if exc.code == 429 or exc.code >= 500:
                retry_after = exc.headers.get("Retry-After")
                seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
                raise TransientDeliveryError(message, retry_after=seconds) from exc
            raise PermanentDeliveryError(message) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise TransientDeliveryError(f"Audience upload to {url} failed: {exc}") from exc
        return url
