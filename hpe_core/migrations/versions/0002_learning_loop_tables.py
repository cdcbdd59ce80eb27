"""Learning loop tables: decisions, outcomes and model versions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 06:34:56.877340
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "041_hyper_personalization_engine_decisions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("config_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=256), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column(
            "context",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "eligible",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "probabilities",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("action_id", sa.String(length=128), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("variant", sa.String(length=16), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("model_action_id", sa.String(length=128), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("learned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reward", sa.Float(), nullable=True),
        sa.Column("engaged", sa.Boolean(), nullable=True),
        sa.Column("given_reward", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "variant IN ('treatment', 'holdout')",
            name=op.f("ck_041_hyper_personalization_engine_decisions_variant"),
        ),
        sa.ForeignKeyConstraint(
            ["config_id"],
            ["041_hyper_personalization_engine_configs.id"],
            name=op.f("fk_041_hyper_personalization_engine_decisions_config_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_041_hyper_personalization_engine_decisions")),
    )
    with op.batch_alter_table(
        "041_hyper_personalization_engine_decisions", schema=None
    ) as batch_op:
        batch_op.create_index(
            "ix_041_hpe_decisions_created", ["config_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_041_hpe_decisions_unlearned",
            ["config_id", "window_closes_at"],
            unique=False,
            postgresql_where=sa.text("learned_at IS NULL"),
            sqlite_where=sa.text("learned_at IS NULL"),
        )
        batch_op.create_index(
            "ix_041_hpe_decisions_user", ["config_id", "user_id", "created_at"], unique=False
        )

    op.create_table(
        "041_hyper_personalization_engine_model_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("config_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("vw_args", sa.Text(), nullable=False),
        sa.Column("vw_version", sa.String(length=32), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.Column("examples", sa.Integer(), nullable=False),
        sa.Column("total_examples", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["config_id"],
            ["041_hyper_personalization_engine_configs.id"],
            name=op.f("fk_041_hyper_personalization_engine_model_versions_config_id"),
        ),
        sa.PrimaryKeyConstraint(
            "id", name=op.f("pk_041_hyper_personalization_engine_model_versions")
        ),
        sa.UniqueConstraint(
            "config_id",
            "version",
            name=op.f("uq_041_hyper_personalization_engine_model_versions_config_id"),
        ),
    )
    op.create_table(
        "041_hyper_personalization_engine_outcomes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("config_id", sa.Uuid(), nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.String(length=256), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idempotency_key", sa.String(length=256), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["config_id"],
            ["041_hyper_personalization_engine_configs.id"],
            name=op.f("fk_041_hyper_personalization_engine_outcomes_config_id"),
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["041_hyper_personalization_engine_decisions.id"],
            name=op.f("fk_041_hyper_personalization_engine_outcomes_decision_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_041_hyper_personalization_engine_outcomes")),
        sa.UniqueConstraint(
            "config_id",
            "idempotency_key",
            name=op.f("uq_041_hyper_personalization_engine_outcomes_config_id"),
        ),
    )
    with op.batch_alter_table("041_hyper_personalization_engine_outcomes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_041_hpe_outcomes_user", ["config_id", "user_id", "occurred_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_041_hyper_personalization_engine_outcomes_decision_id"),
            ["decision_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("041_hyper_personalization_engine_outcomes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_041_hyper_personalization_engine_outcomes_decision_id"))
        batch_op.drop_index("ix_041_hpe_outcomes_user")

    op.drop_table("041_hyper_personalization_engine_outcomes")
    op.drop_table("041_hyper_personalization_engine_model_versions")
    with op.batch_alter_table(
        "041_hyper_personalization_engine_decisions", schema=None
    ) as batch_op:
        batch_op.drop_index("ix_041_hpe_decisions_user")
        batch_op.drop_index(
            "ix_041_hpe_decisions_unlearned",
            postgresql_where=sa.text("learned_at IS NULL"),
            sqlite_where=sa.text("learned_at IS NULL"),
        )
        batch_op.drop_index("ix_041_hpe_decisions_created")

    op.drop_table("041_hyper_personalization_engine_decisions")
