"""The ads connector: audience membership per decision, CSV export and upload."""

from __future__ import annotations

import datetime as dt
import http.client
import os
import re
import tempfile
import uuid
from pathlib import Path

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from connectors.ads import audience
from hpe_core.deliver import delivery as delivery_service
from hpe_core.deliver import outbound
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

    @validates("upload_url")
    def _https(self, value, **_kwargs) -> None:
        # The upload carries the bearer token and customer data: https, except to a
        # loopback address (a local test server); no credentials in the URL.
        if value is None:
            return
        try:
            outbound.check_url(value)
        except outbound.OutboundRefused as exc:
            raise ValidationError(exc.message) from exc


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
        # The detail is for operators (hpe channels list --health, the logs); tenants'
        # GET /channels?health=true sees ok / not ok only.
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
        """POST one CSV through :mod:`hpe_core.deliver.outbound`: https (or loopback), an
        address the operator's policy allows, no redirect followed (the bearer token
        never reaches another host), and only a 2xx counts as delivered.

        :raises TransientDeliveryError: unreachable, timeout, 429 or 5xx
        :raises PermanentDeliveryError: refused by the policy, a redirect, another 4xx
        """
        url = self.plugin_config["upload_url"]
        headers = {
            "Content-Type": "text/csv; charset=utf-8",
            "X-HPE-Audience": name,
            "X-HPE-Config": str(config_id),
        }
        if self.plugin_config["upload_token"]:
            headers["Authorization"] = f"Bearer {self.plugin_config['upload_token']}"
        try:
            reply = outbound.post(
                url,
                text.encode(),
                headers,
                policy=self.runtime.outbound,
                timeout=self.plugin_config["timeout"],
            )
        except outbound.OutboundRefused as exc:
            raise PermanentDeliveryError(
                f"Audience upload to {url} refused: {exc.message}"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise TransientDeliveryError(f"Audience upload to {url} failed: {exc!r}") from exc
        if reply.ok:
            return url
        message = f"Audience upload to {url} answered {reply.status}."
        if 300 <= reply.status < 400:
            raise PermanentDeliveryError(
                f"{message} Redirects are not followed: set PLUGINS.ads.upload_url to the "
                f"final address ({reply.headers.get('location', 'no Location given')})."
            )
        if reply.status == 429 or reply.status >= 500:
            retry_after = reply.headers.get("retry-after")
            seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
            raise TransientDeliveryError(message, retry_after=seconds)
        raise PermanentDeliveryError(message)
