"""The sum of a day's stored hours (hpe_core.measure.hours): a read of today starts from
one row instead of adding up to 24 hourly partials.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

P = "041_hyper_personalization_engine_"
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        P + "metrics_hours_sums",
        sa.Column("config_id", sa.Uuid(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["config_id"], [P + "configs.id"], name=op.f(f"fk_{P}metrics_hours_sums_config_id")
        ),
        sa.PrimaryKeyConstraint("config_id", "date", name=op.f(f"pk_{P}metrics_hours_sums")),
    )


def downgrade() -> None:
    op.drop_table(P + "metrics_hours_sums")
