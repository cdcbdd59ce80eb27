"""decide: one decision for one person at one touchpoint (loop step 1).

The pipeline (``decisions``): eligibility (``eligibility``, ``consent``), guardrails
(``guardrails``), treatment/holdout ``assignment``, the decision's ``features``, then the
policy (``policy/``: the VW learner, exploration, the model store and serving), and one
logged row with its propensity. ``results`` holds what a decision request results in: a
``Decision``, or ``NoDecision`` with its ``NoDecisionReason``.

``consent`` lives here, not in deliver: eligibility reads it on every decision, while
webhooks, tracking links and the CLI only write it.

May import: ``tenancy``, ``store``. One exception, declared in setup.cfg: the budget
guardrail reads past days' spend from ``measure.rollups``.
"""
