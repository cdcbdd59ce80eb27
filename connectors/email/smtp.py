"""Sending through SMTP, with each failure classified as transient or permanent."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage

from hpe_core.deliver.channels import HealthStatus
from hpe_core.errors import PermanentDeliveryError, TransientDeliveryError


def _connect(config: Mapping) -> smtplib.SMTP:
    host, port, timeout = config["smtp_host"], config["smtp_port"], config["smtp_timeout"]
    if config["smtp_security"] == "ssl":
        client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
        if config["smtp_security"] == "starttls":
            client.starttls(context=ssl.create_default_context())
    if config.get("smtp_username"):
        client.login(config["smtp_username"], config.get("smtp_password") or "")
    return client


def send(config: Mapping, message: EmailMessage) -> None:
    """Hand one message to the SMTP server.

    :raises TransientDeliveryError: connection refused/lost, timeout, 4xx replies
    :raises PermanentDeliveryError: 5xx replies (bad recipient, rejected content), login
        refused
    """
    try:
        with _connect(config) as client:
            client.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise PermanentDeliveryError(
            f"SMTP login refused ({exc.smtp_code}): check PLUGINS.email.smtp_username/password."
        ) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _msg in exc.recipients.values()]
        detail = "; ".join(f"{code} {msg!r}" for code, msg in exc.recipients.values())
        if codes and all(400 <= code < 500 for code in codes):
            raise TransientDeliveryError(f"SMTP recipient deferred: {detail}") from exc
        raise PermanentDeliveryError(f"SMTP recipient refused: {detail}") from exc
    except smtplib.SMTPResponseException as exc:
        text = f"SMTP {exc.smtp_code} {exc.smtp_error!r}"
        if 400 <= exc.smtp_code < 500:
            raise TransientDeliveryError(text) from exc
        raise PermanentDeliveryError(text) from exc
    except (smtplib.SMTPException, OSError) as exc:
        # Refused or dropped connections, timeouts, TLS failures: the server may be back.
        raise TransientDeliveryError(
            f"SMTP server {config['smtp_host']}:{config['smtp_port']} unavailable: {exc!r}"
        ) from exc


def health(config: Mapping) -> HealthStatus:
    """Connect (and log in) to the SMTP server, then say NOOP."""
    try:
        with _connect({**config, "smtp_timeout": min(config["smtp_timeout"], 5)}) as client:
            code, _ = client.noop()
    except (smtplib.SMTPException, OSError) as exc:
        return HealthStatus(False, f"SMTP {config['smtp_host']}:{config['smtp_port']}: {exc!r}")
    return HealthStatus(code == 250, f"SMTP {config['smtp_host']}:{config['smtp_port']} answers")
