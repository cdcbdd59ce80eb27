"""compat: the APIs of other products, answered by HPE's own stages.

Azure AI Personalizer (retired 2026-10-01) is the one so far: its Rank, Reward and
Activate calls, its service configuration and learning settings, its offline evaluations
and its model file, mapped onto configurations, the decision engine, the decision log,
off-policy evaluation and model versions (docs/personalizer.md says what maps to what).

- ``options``: event ids, and the channel Personalizer calls decide on.
- ``features``: Personalizer's feature lists and action ids in HPE's terms.
- ``ranking``: Rank and multi-slot Rank (dynamic actions, replays, deferred events).
- ``feedback``: Reward and Activate, single- and multi-slot.
- ``loop_settings``: the service configuration and the policy (VW arguments).
- ``evaluations``: offline evaluations, answered from HPE's off-policy evaluation.
- ``model_files``: the model file (export, import, reset) and the log's properties.
- ``errors``: what HPE does not do (501) and Personalizer's error codes.

May import: every stage (it sits above ``measure``). Nothing imports it but the web
layer (``web/compat``).
"""
