"""Decisions keep the feature line the model scored.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: adding it rewrites nothing, even on a big decisions table.
    with op.batch_alter_table("041_hyper_personalization_engine_decisions") as batch_op:
        batch_op.add_column(sa.Column("features", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("041_hyper_personalization_engine_decisions") as batch_op:
        batch_op.drop_column("features")
