"""Measurement: attribution credits, stale rollup days, recommendations.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from hpe_core.store.models import JsonDocument

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

P = "041_hyper_personalization_engine_"


def upgrade() -> None:
    # Nullable, no default: adding it rewrites nothing, even on a big outcomes table.
    with op.batch_alter_table(P + "outcomes") as batch_op:
        batch_op.add_column(sa.Column("attributed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_041_hpe_outcomes_unattributed",
            ["config_id", "received_at"],
            unique=False,
            postgresql_where=sa.text("decision_id IS NULL AND attributed_at IS NULL"),
            sqlite_where=sa.text("decision_id IS NULL AND attributed_at IS NULL"),
        )

    op.create_table(
        P + "attributions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("config_id", sa.Uuid(), nullable=False),
        sa.Column("outcome_id", sa.Uuid(), nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("credit", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["config_id"], [P + "configs.id"], name=op.f(f"fk_{P}attributions_config_id")
        ),
        sa.ForeignKeyConstraint(
            ["outcome_id"], [P + "outcomes.id"], name=op.f(f"fk_{P}attributions_outcome_id")
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"], [P + "decisions.id"], name=op.f(f"fk_{P}attributions_decision_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{P}attributions")),
        sa.UniqueConstraint(
            "outcome_id", "decision_id", name=op.f(f"uq_{P}attributions_outcome_id")
        ),
    )
    with op.batch_alter_table(P + "attributions") as batch_op:
        batch_op.create_index(
            batch_op.f(f"ix_{P}attributions_decision_id"), ["decision_id"], unique=False
        )

    op.create_table(
        P + "metrics_stale",
        sa.Column("config_id", sa.Uuid(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["config_id"], [P + "configs.id"], name=op.f(f"fk_{P}metrics_stale_config_id")
        ),
        sa.PrimaryKeyConstraint("config_id", "date", name=op.f(f"pk_{P}metrics_stale")),
    )

    op.create_table(
        P + "recommendations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("config_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=256), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("evidence", JsonDocument, nullable=False),
        sa.Column("patch", JsonDocument, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'applied', 'dismissed', 'resolved')",
            name=op.f(f"ck_{P}recommendations_status"),
        ),
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'critical')",
            name=op.f(f"ck_{P}recommendations_severity"),
        ),
        sa.ForeignKeyConstraint(
            ["config_id"], [P + "configs.id"], name=op.f(f"fk_{P}recommendations_config_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{P}recommendations")),
        sa.UniqueConstraint(
            "config_id", "kind", "subject", name=op.f(f"uq_{P}recommendations_config_id")
        ),
    )


def downgrade() -> None:
    op.drop_table(P + "recommendations")
    op.drop_table(P + "metrics_stale")
    with op.batch_alter_table(P + "attributions") as batch_op:
        batch_op.drop_index(batch_op.f(f"ix_{P}attributions_decision_id"))
    op.drop_table(P + "attributions")
    with op.batch_alter_table(P + "outcomes") as batch_op:
        batch_op.drop_index(
            "ix_041_hpe_outcomes_unattributed",
            postgresql_where=sa.text("decision_id IS NULL AND attributed_at IS NULL"),
            sqlite_where=sa.text("decision_id IS NULL AND attributed_at IS NULL"),
        )
        batch_op.drop_column("attributed_at")
