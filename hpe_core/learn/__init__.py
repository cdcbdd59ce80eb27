"""learn: outcomes come back and become rewards the model learns from (loop steps 3-4).

Outcomes, idempotent (``outcomes``); rewards from event weights (``rewards``); reward
windows closing and VW learning in order, one configuration at a time (``learning``);
historical imports (``imports``, their line format ``import_format``);
attribution of user-level outcomes (``attribution``).

May import: ``decide`` (features, the policy), ``tenancy``, ``store``.
"""
