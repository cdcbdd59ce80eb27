"""Schemas of ``POST /{id}/decisions/batch``: up to 10,000 decision requests in one call.

Each request is checked exactly as ``POST /{id}/decisions`` checks its body: by
:class:`~web.api.delivery.DecisionDeliverRequestSchema`, whose common shape is checked
without marshmallow's machinery (:func:`web.api.request_shapes.fast_loading`).
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from hpe_core.decide import decisions
from hpe_core.errors import InvalidInput
from web.api.delivery import DecisionDeliveredSchema, DecisionDeliverRequestSchema
from web.api.request_shapes import fast_loading
from web.api.schemas import HpeSchema

#: The most requests one call may carry (shared/DESIGN.md §5).
MAX_BATCH = 10_000
_SINGLE = fast_loading(DecisionDeliverRequestSchema())


def load_requests(items: list) -> list[tuple]:
    """Check and load decision requests as ``(DecisionRequest, DeliverRequest or None)``
    pairs, in their order.

    :raises ValidationError: with the errors of each invalid item under its index
    """
    loaded, errors = [], {}
    for index, item in enumerate(items):
        try:
            data = _SINGLE.load(item)
        except ValidationError as exc:
            errors[index] = exc.messages
            continue
        deliver = data.pop("deliver", None)
        try:
            loaded.append((decisions.parse_request(data), deliver))
        except InvalidInput as exc:
            errors[index] = exc.errors
    if errors:
        raise ValidationError(errors)
    return loaded


class DecisionRequests(fields.List):
    """The batch's requests, loaded by :func:`load_requests` (documented as a list of
    single decision requests)."""

    def __init__(self, **kwargs):
        super().__init__(fields.Nested(DecisionDeliverRequestSchema), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not list:
            raise self.make_error("invalid")
        # Before any item is looked at: a 10,001-item body costs nothing to refuse.
        if not 0 < len(value) <= MAX_BATCH:
            raise ValidationError(f"From 1 to {MAX_BATCH:,} requests.")
        return load_requests(value)


class DecisionBatchRequestSchema(HpeSchema):
    requests = DecisionRequests(
        required=True,
        validate=validate.Length(1, MAX_BATCH),
        metadata={
            "description": "1 to 10,000 decision requests, each shaped like the body of "
            "`POST /{id}/decisions` (`deliver` included)."
        },
    )


class DecisionBatchSchema(Schema):
    decisions = fields.List(
        fields.Nested(DecisionDeliveredSchema),
        metadata={
            "description": "One answer per request, in request order: a decision, or "
            "`action_id: null` with a `reason` when nothing was eligible."
        },
    )
