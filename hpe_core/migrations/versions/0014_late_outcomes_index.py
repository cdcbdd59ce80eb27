"""Late outcomes by time received: ``GET /metrics`` counts the range's late outcomes at
every read (hpe_core.measure.late); without this partial index that query read every
outcome of the range to find the few late ones (~0.17 s at 90 days × 100,000 decisions
a day, 690,000 outcomes; ~0.01 s with it).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

P = "041_hyper_personalization_engine_"


def upgrade() -> None:
    with op.batch_alter_table(P + "outcomes") as batch_op:
        batch_op.create_index(
            "ix_041_hpe_outcomes_late",
            ["config_id", "received_at"],
            unique=False,
            postgresql_where=sa.text("late IS TRUE"),
            sqlite_where=sa.text("late IS TRUE"),
        )


def downgrade() -> None:
    with op.batch_alter_table(P + "outcomes") as batch_op:
        batch_op.drop_index(
            "ix_041_hpe_outcomes_late",
            postgresql_where=sa.text("late IS TRUE"),
            sqlite_where=sa.text("late IS TRUE"),
        )
