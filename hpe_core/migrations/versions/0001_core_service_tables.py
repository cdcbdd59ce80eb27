"""Core service tables: workspaces, API keys and the seed's configs, activities, metrics.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 06:28:29.611863
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "041_hyper_personalization_engine_workspaces",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_041_hyper_personalization_engine_workspaces")),
    )
    op.create_table(
        "041_hyper_personalization_engine_api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('secret', 'publishable')",
            name=op.f("ck_041_hyper_personalization_engine_api_keys_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["041_hyper_personalization_engine_workspaces.id"],
            name=op.f("fk_041_hyper_personalization_engine_api_keys_workspace_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_041_hyper_personalization_engine_api_keys")),
        sa.UniqueConstraint(
            "prefix", name=op.f("uq_041_hyper_personalization_engine_api_keys_prefix")
        ),
    )
    with op.batch_alter_table("041_hyper_personalization_engine_api_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_041_hyper_personalization_engine_api_keys_workspace_id"),
            ["workspace_id"],
            unique=False,
        )

    op.create_table(
        "041_hyper_personalization_engine_configs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('ACTIVE', 'PAUSED', 'INACTIVE')",
            name=op.f("ck_041_hyper_personalization_engine_configs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["041_hyper_personalization_engine_workspaces.id"],
            name=op.f("fk_041_hyper_personalization_engine_configs_workspace_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_041_hyper_personalization_engine_configs")),
    )
    with op.batch_alter_table("041_hyper_personalization_engine_configs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_041_hpe_configs_workspace_created", ["workspace_id", "created_at"], unique=False
        )

    op.create_table(
        "041_hyper_personalization_engine_activities",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("config_id", sa.Uuid(), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["config_id"],
            ["041_hyper_personalization_engine_configs.id"],
            name=op.f("fk_041_hyper_personalization_engine_activities_config_id"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["041_hyper_personalization_engine_workspaces.id"],
            name=op.f("fk_041_hyper_personalization_engine_activities_workspace_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_041_hyper_personalization_engine_activities")),
    )
    with op.batch_alter_table(
        "041_hyper_personalization_engine_activities", schema=None
    ) as batch_op:
        batch_op.create_index(
            "ix_041_hpe_activities_config_created", ["config_id", "created_at"], unique=False
        )

    op.create_table(
        "041_hyper_personalization_engine_metrics",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("config_id", sa.Uuid(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column(
            "metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["config_id"],
            ["041_hyper_personalization_engine_configs.id"],
            name=op.f("fk_041_hyper_personalization_engine_metrics_config_id"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["041_hyper_personalization_engine_workspaces.id"],
            name=op.f("fk_041_hyper_personalization_engine_metrics_workspace_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_041_hyper_personalization_engine_metrics")),
        sa.UniqueConstraint(
            "config_id", "date", name=op.f("uq_041_hyper_personalization_engine_metrics_config_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("041_hyper_personalization_engine_metrics")
    with op.batch_alter_table(
        "041_hyper_personalization_engine_activities", schema=None
    ) as batch_op:
        batch_op.drop_index("ix_041_hpe_activities_config_created")

    op.drop_table("041_hyper_personalization_engine_activities")
    with op.batch_alter_table("041_hyper_personalization_engine_configs", schema=None) as batch_op:
        batch_op.drop_index("ix_041_hpe_configs_workspace_created")

    op.drop_table("041_hyper_personalization_engine_configs")
    with op.batch_alter_table("041_hyper_personalization_engine_api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_041_hyper_personalization_engine_api_keys_workspace_id"))

    op.drop_table("041_hyper_personalization_engine_api_keys")
    op.drop_table("041_hyper_personalization_engine_workspaces")
