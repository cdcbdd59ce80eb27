"""deliver: hand a decision to its channel, and hear back from it (loop step 2).

The connector contract channel plugins implement (``channels``: ``Connector``,
``Delivery``, ``DeliveryResult``, ``InboundEvent``, ``WebhookRequest``, ``HealthStatus``),
signed tracking links (``tracking_links``), deliveries with retries (``delivery``) and
signed inbound webhooks that become outcomes and consent changes (``webhooks``), and
the one rule for answering a decision request, decide then deliver when asked
(``touchpoints``: ``POST /{id}/decisions`` and the batch endpoint call it).

May import: ``learn`` (webhooks record outcomes), ``decide`` (the decision engine,
consent), ``tenancy``, ``store``.
"""
