"""The email connector: render an action's ``content.email`` and send it through SMTP."""

from __future__ import annotations

import dataclasses
import json
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, formataddr, make_msgid

from jinja2 import TemplateError
from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
    validates_schema,
)

from connectors.email import sendgrid, sendgrid_signature, smtp, templates
from hpe_core.deliver.channels import Connector, HealthStatus, WebhookRequest, parse_generic_events
from hpe_core.deliver.delivery import Delivery, DeliveryResult
from hpe_core.errors import PermanentDeliveryError
from hpe_core.store.models import utcnow


class EmailConfigSchema(Schema):
    """``PLUGINS["email"]``; each key can come from the environment, e.g.
    ``HPE_PLUGINS__email__smtp_password``."""

    class Meta:
        unknown = RAISE

    smtp_host = fields.String(load_default="localhost")
    smtp_port = fields.Integer(load_default=587, validate=validate.Range(1, 65535))
    smtp_security = fields.String(
        load_default="starttls", validate=validate.OneOf(["starttls", "ssl", "none"])
    )
    smtp_username = fields.String(load_default=None, allow_none=True)
    smtp_password = fields.String(load_default=None, allow_none=True)
    smtp_timeout = fields.Float(load_default=10.0, validate=validate.Range(0.1, 300))
    from_address = fields.Email(load_default="hpe@localhost")
    from_name = fields.String(load_default="")
    track_opens = fields.Boolean(load_default=True)
    track_clicks = fields.Boolean(load_default=True)
    cost_per_decision = fields.Float(
        load_default=0.0,
        allow_nan=False,
        validate=validate.Range(min=0),
        metadata={"description": "Cost of one decision on this channel, for ROI"},
    )
    sendgrid_verification_key = fields.String(
        load_default=None,
        allow_none=True,
        validate=lambda value: _check_verification_key(value),
        metadata={"description": "SendGrid's signed event webhook key, for every workspace"},
    )


def _check_verification_key(value: str | None) -> None:
    if value is None:
        return
    try:
        sendgrid_signature.load_key(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


class EmailRecipientSchema(Schema):
    """``deliver.to`` for an email: the address and, optionally, the display name."""

    class Meta:
        unknown = RAISE

    email = fields.Email(
        validate=validate.Length(max=320), metadata={"description": "The address to send to"}
    )
    name = fields.String(
        validate=[
            validate.Length(max=200),
            validate.Regexp(r"^[^\x00-\x1f\x7f]*\Z", error="No line breaks or control characters."),
        ],
        metadata={"description": "The display name in To:"},
    )


class EmailWorkspaceSettingsSchema(Schema):
    """One workspace's email settings (``PUT /channels/email/settings``, ``hpe channels
    configure <workspace> email``)."""

    class Meta:
        unknown = RAISE

    sendgrid_verification_key = fields.String(
        validate=_check_verification_key,
        metadata={
            "description": "SendGrid's verification key (base64 DER, from the Signed Event "
            "Webhook settings): its signed event webhooks are verified with it"
        },
    )


#: Control characters (CR and LF above all) can never be part of a display name: with
#: them a name could add headers. Such a delivery fails for good (retrying cannot help).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: RFC 8058's one-click unsubscribe: mail clients read List-Unsubscribe as plain
#: ``<url>``. The default policy would RFC 2047-encode a long URL (it has no space to fold
#: at), so these headers may use the whole 998-character line RFC 5322 allows.
_UNFOLDED = frozenset({"list-unsubscribe", "list-unsubscribe-post"})


class _MessagePolicy(EmailPolicy):
    """The default email policy, except that ``List-Unsubscribe`` is never encoded."""

    def fold(self, name, value):
        if name.lower() in _UNFOLDED:
            return EmailPolicy.fold(self.clone(max_line_length=998), name, value)
        return super().fold(name, value)

    def fold_binary(self, name, value):
        if name.lower() in _UNFOLDED:
            return EmailPolicy.fold_binary(self.clone(max_line_length=998), name, value)
        return super().fold_binary(name, value)


_POLICY = _MessagePolicy()


def _display_name(value: object, field: str) -> str:
    """:raises PermanentDeliveryError: a name with a line break or control character"""
    name = str(value or "")
    if _CONTROL.search(name):
        raise PermanentDeliveryError(f"{field} may not contain line breaks or control characters.")
    return name


def _template(html_mode: bool = False):
    def check(value: str) -> None:
        problem = templates.check(value, html_mode=html_mode)
        if problem:
            raise ValidationError(problem)

    return check


class EmailContentSchema(Schema):
    """``action.content.email``: Jinja2 templates and the action's links."""

    class Meta:
        unknown = RAISE

    subject = fields.String(required=True, validate=[validate.Length(1, 998), _template()])
    html = fields.String(validate=[validate.Length(max=256 * 1024), _template(True)])
    text = fields.String(validate=[validate.Length(max=256 * 1024), _template()])
    links = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^[A-Za-z0-9_\-]{1,64}\Z")),
        values=fields.Url(schemes={"http", "https"}, require_tld=False),
        load_default=dict,
        validate=validate.Length(max=50),
        metadata={"description": "name -> URL; the only targets of tracked redirects"},
    )
    from_name = fields.String(validate=validate.Length(max=200))
    reply_to = fields.Email()

    @validates("subject")
    def _one_line(self, value: str, **kwargs) -> None:
        if "\n" in value or "\r" in value:
            raise ValidationError("A subject is one line.")

    @validates_schema
    def _a_body(self, data, **kwargs):
        if not data.get("html") and not data.get("text"):
            raise ValidationError("Give html, text or both.", "html")


class EmailConnector(Connector):
    name = "email"
    description = "Email through SMTP, with tracked links and an open pixel"
    config_schema = EmailConfigSchema
    workspace_settings_schema = EmailWorkspaceSettingsSchema
    recipient_schema = EmailRecipientSchema
    content_schema = EmailContentSchema

    def send(self, delivery: Delivery) -> DeliveryResult:
        message = self.render(delivery)
        smtp.send(self.plugin_config, message)
        return DeliveryResult(
            status="sent",
            provider_id=message["Message-ID"],
            detail={"tracking": self._tracking()},
        )

    def render(self, delivery: Delivery) -> EmailMessage:
        """Build the message: templates rendered, links tracked, pixel and headers added.

        :raises PermanentDeliveryError: no address, no email content, a template error, a
            name with a line break
        """
        address = (delivery.recipient or {}).get("email")
        if not address:
            raise PermanentDeliveryError("No recipient email address (deliver.to.email).")
        if not delivery.content.get("subject"):
            raise PermanentDeliveryError(f"Action {delivery.action_id} has no content.email.")
        links = _Links.of(self, delivery)
        subject, html_body, text_body = self._render_templates(delivery, links)
        html_body, text_body = self._track(delivery, links, html_body, text_body)
        message = self._headers(delivery, address, subject, links.unsubscribe)
        if text_body:
            message.set_content(text_body)
            if html_body:
                message.add_alternative(html_body, subtype="html")
        else:
            message.set_content(html_body, subtype="html")
        return message

    def _render_templates(
        self, delivery: Delivery, links: _Links
    ) -> tuple[str, str | None, str | None]:
        """The subject, HTML and text bodies with the delivery's variables filled in.

        :raises PermanentDeliveryError: a template that does not render
        """
        content = delivery.content
        variables = {
            **dict(delivery.variables),
            "user_id": delivery.user_id,
            "action_id": delivery.action_id,
            "to": dict(delivery.recipient),
            "features": dict(delivery.action.get("features") or {}),
            "links": links.shown,
            "unsubscribe_url": links.unsubscribe,
        }
        html, text = content.get("html"), content.get("text")
        try:
            subject = templates.render(content["subject"], variables).strip()
            html_body = templates.render(html, variables, html_mode=True) if html else None
            text_body = templates.render(text, variables) if text else None
        except (TemplateError, ValueError) as exc:
            raise PermanentDeliveryError(
                f"Cannot render action {delivery.action_id}: {exc}"
            ) from exc
        return subject, html_body, text_body

    def _track(
        self, delivery: Delivery, links: _Links, html_body: str | None, text_body: str | None
    ) -> tuple[str | None, str | None]:
        """The bodies with the action's links tracked and the open pixel added (when on)."""
        if links.tracked:
            track = lambda name: self._click_url(delivery, name)  # noqa: E731
            if html_body:
                html_body = templates.rewrite_html_links(html_body, links.targets, track)
            if text_body:
                text_body = templates.rewrite_text_links(text_body, links.targets, track)
        if self._tracking() and self.plugin_config["track_opens"] and html_body:
            html_body = templates.add_pixel(
                html_body, self.runtime.links.url("open", delivery.decision_id)
            )
        return html_body, text_body

    def _headers(
        self, delivery: Delivery, address: str, subject: str, unsubscribe: str
    ) -> EmailMessage:
        """A message with its headers set and no body yet."""
        config, content = self.plugin_config, delivery.content
        message = EmailMessage(policy=_POLICY)
        message["Subject"] = " ".join(subject.split())
        from_name = _display_name(content.get("from_name") or config["from_name"], "from_name")
        message["From"] = formataddr((from_name, config["from_address"]))
        name = _display_name(delivery.recipient.get("name"), "deliver.to.name")
        message["To"] = formataddr((name, address))
        if content.get("reply_to"):
            message["Reply-To"] = content["reply_to"]
        message["Date"] = format_datetime(utcnow())
        message["Message-ID"] = make_msgid(domain=Address(addr_spec=config["from_address"]).domain)
        message["X-HPE-Decision-Id"] = str(delivery.decision_id)
        # SendGrid's SMTP relay turns unique_args into custom args of its event webhook.
        message["X-SMTPAPI"] = json.dumps(
            {"unique_args": {"decision_id": str(delivery.decision_id)}}
        )
        if unsubscribe:
            message["List-Unsubscribe"] = f"<{unsubscribe}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
        return message

    def parse_webhook(self, request: WebhookRequest):
        body = request.json()
        if sendgrid.looks_like(body):
            return sendgrid.parse(body)
        return parse_generic_events(request)

    def health(self) -> HealthStatus:
        return smtp.health(self.plugin_config)

    def _tracking(self) -> bool:
        return bool(self.runtime.links is not None and self.runtime.public_url)

    def _click_url(self, delivery: Delivery, name: str) -> str:
        return self.runtime.links.url("click", delivery.decision_id, name)


@dataclasses.dataclass(frozen=True)
class _Links:
    """The action's links as one message shows them.

    :param targets: link name -> the configured URL (the only redirect targets)
    :param shown: link name -> the URL templates get (tracked when click tracking is on)
    :param tracked: whether clicks are tracked
    :param unsubscribe: the one-click unsubscribe URL ("" without tracking)
    """

    targets: dict[str, str]
    shown: dict[str, str]
    tracked: bool
    unsubscribe: str

    @classmethod
    def of(cls, connector: EmailConnector, delivery: Delivery) -> _Links:
        tracking = connector._tracking()
        tracked = tracking and connector.plugin_config["track_clicks"]
        targets = dict(delivery.content.get("links") or {})
        shown = {
            name: connector._click_url(delivery, name) if tracked else url
            for name, url in targets.items()
        }
        unsubscribe = (
            connector.runtime.links.url("unsubscribe", delivery.decision_id) if tracking else ""
        )
        return cls(targets, shown, tracked, unsubscribe)
