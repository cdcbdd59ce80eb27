"""Hourly partial rollups of yesterday and today with their stale marks, and the
off-policy evaluation the measurement pass computed last (hpe_core.measure.hours,
hpe_core.measure.evaluation_snapshots).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

P = "041_hyper_personalization_engine_"
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        P + "metrics_hours",
        sa.Column("config_id", sa.Uuid(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["config_id"], [P + "configs.id"], name=op.f(f"fk_{P}metrics_hours_config_id")
        ),
        sa.PrimaryKeyConstraint("config_id", "hour", name=op.f(f"pk_{P}metrics_hours")),
    )
    op.create_table(
        P + "metrics_hours_stale",
        sa.Column("config_id", sa.Uuid(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["config_id"], [P + "configs.id"], name=op.f(f"fk_{P}metrics_hours_stale_config_id")
        ),
        sa.PrimaryKeyConstraint("config_id", "hour", name=op.f(f"pk_{P}metrics_hours_stale")),
    )
    op.create_table(
        P + "evaluation_snapshots",
        sa.Column("config_id", sa.Uuid(), nullable=False),
        sa.Column("date_from", sa.Date(), nullable=False),
        sa.Column("date_to", sa.Date(), nullable=False),
        sa.Column("sample_limit", sa.Integer(), nullable=False),
        sa.Column("sample_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluation", JSON, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["config_id"], [P + "configs.id"], name=op.f(f"fk_{P}evaluation_snapshots_config_id")
        ),
        sa.PrimaryKeyConstraint("config_id", name=op.f(f"pk_{P}evaluation_snapshots")),
    )


def downgrade() -> None:
    op.drop_table(P + "evaluation_snapshots")
    op.drop_table(P + "metrics_hours_stale")
    op.drop_table(P + "metrics_hours")
