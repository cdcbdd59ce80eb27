"""Scheduled audience exports: per configuration and channel, how often its audiences are
shipped, when next, and how the last run went.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

P = "041_hyper_personalization_engine_"
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        P + "audience_schedules",
        sa.Column("config_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("every_hours", sa.Integer(), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_result", JSON, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["config_id"], [P + "configs.id"], name=op.f(f"fk_{P}audience_schedules_config_id")
        ),
        sa.PrimaryKeyConstraint("config_id", "channel", name=op.f(f"pk_{P}audience_schedules")),
    )
    with op.batch_alter_table(P + "audience_schedules") as batch_op:
        batch_op.create_index("ix_041_hpe_audience_schedules_due", ["next_run_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table(P + "audience_schedules") as batch_op:
        batch_op.drop_index("ix_041_hpe_audience_schedules_due")
    op.drop_table(P + "audience_schedules")
