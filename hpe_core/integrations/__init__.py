"""Integrations: what HPE hands to the rest of a marketing stack (FR-004).

Not a stage of the loop: it reads every stage's results and sits on top of them (beside
``compat``), and no stage imports it.

- ``event_types``: the events a workspace can subscribe an endpoint to.
- ``webhook_signing``: Standard Webhooks signatures and the endpoints' secrets.
- ``webhook_endpoints``: the ``/webhook-endpoints`` resource (secret shown once).
- ``webhook_messages``: the outbox: one message per event and endpoint, one attempt at a
  time with its log, and the endpoint disabled after a day of failures.
"""
