"""store: the database. Engines and sessions (``db``), the seed's ``041_`` tables and the
loop's (``models``), and the few queries every stage shares: the decision log's UTC days
(``days``) and the marks of rolled-up days whose inputs changed (``stale_days``).

Migrations stay in ``hpe_core/migrations`` (Alembic), beside the stages.

May import: nothing of hpe_core but ``hpe_core.errors``. Every stage imports it.
"""
