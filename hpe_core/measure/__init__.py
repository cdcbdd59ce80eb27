"""measure: what the engine is worth (loop step 5).

Day documents computed from the log (``day_documents``) and added up (``day_counts``),
stored daily rollups (``rollups``), the metrics answer (``metrics``) with its statistics
(``stats``), off-policy evaluation (``evaluation``, ``estimators``), and the measurement
pass that rolls up, then runs the circuit breaker and the recommendations
(``measurement``). The answers are the frozen dataclasses of ``hpe_core.results``.

May import: every stage below it (``recommend``, ``learn``, ``decide``, ``tenancy``,
``store``). Nothing imports it but the web layer and the worker, with two declared
exceptions (the budget guardrail reads rollups; a targeting rule uses ``stats.lift``).
"""
