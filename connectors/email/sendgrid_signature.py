"""SendGrid's signed event webhook, verified natively: ECDSA (P-256, SHA-256) over the
``X-Twilio-Email-Event-Webhook-Timestamp`` header followed by the raw body, the signature
in ``X-Twilio-Email-Event-Webhook-Signature`` (base64 of DER).

SendGrid cannot add HPE's ``X-HPE-Signature``; with "Signed Event Webhook Requests" on,
it signs with a key pair of its own and shows the public "verification key" (base64 of
DER). Give it to HPE per workspace (``PUT /channels/email/settings`` or ``hpe channels
configure acme email '{"sendgrid_verification_key": "MFkw..."}'``), or for the whole
deployment in ``PLUGINS["email"]["sendgrid_verification_key"]``, and point SendGrid at
``POST /webhooks/email?workspace=<id>``.
"""

from __future__ import annotations

import base64
import binascii
import time

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
SETTING = "sendgrid_verification_key"
#: How far a signed request's timestamp may be from this server's clock, in seconds. The
#: signature covers the timestamp, so an old request replayed later (a captured body
#: with its headers) is refused once this has passed; SendGrid signs each attempt
#: anew when it sends it, so its retries are not affected.
TOLERANCE_SECONDS = 600


def load_key(text: str):
    """The public key of a base64 DER (SubjectPublicKeyInfo) verification key.

    :raises ValueError: not a P-256 public key in that form
    """
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError("Not a base64 DER public key (SendGrid's verification key).") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("Not an ECDSA P-256 public key.")
    return key


def verify(verification_key: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Whether ``signature`` signs ``timestamp + body`` under the verification key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = load_key(verification_key)
        raw = base64.b64decode(signature.strip(), validate=True)
        key.verify(raw, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (ValueError, binascii.Error, InvalidSignature):
        return False
    return True


def verdict(request, connector) -> bool | None:
    """``hpe_verify_webhook`` for the email channel: None when the request is not signed
    by SendGrid (HPE's own signature applies), else whether SendGrid's signature verifies
    under the workspace's verification key (False when none is set)."""
    signature = request.headers.get(SIGNATURE_HEADER)
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    if signature is None:
        return None
    key = _workspace_key(request.workspace_id) or connector.plugin_config.get(SETTING)
    if not key or not timestamp or not recent(timestamp):
        return False
    return verify(key, timestamp, request.body, signature)


def recent(timestamp: str, now: float | None = None) -> bool:
    """Whether the signed timestamp (Unix seconds) is within :data:`TOLERANCE_SECONDS`
    of ``now`` (this server's clock)."""
    try:
        signed_at = int(timestamp.strip())
    except ValueError:
        return False
    now = time.time() if now is None else now
    return abs(now - signed_at) <= TOLERANCE_SECONDS


def _workspace_key(workspace_id: str) -> str | None:
    """The verification key in the workspace's email settings (read in the request)."""
    from hpe_core.deliver.channels import get_settings
    from plugins.app_runtime import app_runtime

    if not workspace_id or len(workspace_id) > 64:
        return None
    session = app_runtime().sessions()
    try:
        return get_settings(session, workspace_id, "email").get(SETTING)
    finally:
        session.close()
