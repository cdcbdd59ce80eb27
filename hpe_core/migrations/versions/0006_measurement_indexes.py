"""Measurement: outcomes by time received, attribution credit by time given.

A metrics read that includes today computes today live from the decision log; without
these indexes its outcome and credit aggregates read every outcome and credit row the
configuration ever had (~690k and ~46k rows at 90 days × 100,000 decisions) to find
today's. With them they read only rows written since the first live day began
(``hpe_core.measure.day_documents``).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

P = "041_hyper_personalization_engine_"


def upgrade() -> None:
    # The partial ix_041_hpe_outcomes_unattributed (0005) stays: it holds only the
    # user-level outcomes waiting for attribution, the attribution job's whole scan.
    with op.batch_alter_table(P + "outcomes") as batch_op:
        batch_op.create_index(
            "ix_041_hpe_outcomes_received", ["config_id", "received_at"], unique=False
        )
    with op.batch_alter_table(P + "attributions") as batch_op:
        batch_op.create_index(
            "ix_041_hpe_attributions_created", ["config_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table(P + "attributions") as batch_op:
        batch_op.drop_index("ix_041_hpe_attributions_created")
    with op.batch_alter_table(P + "outcomes") as batch_op:
        batch_op.drop_index("ix_041_hpe_outcomes_received")
