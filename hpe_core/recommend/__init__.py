"""recommend: what to change, and the automatic brakes (after loop step 5).

The rules (``rules``, ``model_rules``, ``targeting_rules``) turn a measured summary into
``proposals``; ``recommendations`` stores them and applies or dismisses them through the
same validated update as ``PATCH``; the ``circuit_breaker`` reverts everyone to the
baseline when treatment is significantly worse. The measurement pass (in ``measure``)
calls them with the numbers it measured.

May import: ``tenancy``, ``store``, and ``hpe_core.results`` (the typed summary and
evaluation the rules read; outside the stages, so measure can build them). One exception,
declared in setup.cfg: the targeting rules judge a segment with ``measure.stats.lift``,
the same test the metrics use.
"""
