"""Channel tables: deliveries, consents, webhook secrets and receipts, channel settings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 06:55:27.039572
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "041_hyper_personalization_engine_consents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('unsubscribed', 'bounced', 'complained', 'subscribed')",
            name=op.f("ck_041_hyper_personalization_engine_consents_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_041_hyper_personalization_engine_consents")),
        sa.UniqueConstraint(
            "workspace_id",
            "channel",
            "user_id",
            name=op.f("uq_041_hyper_personalization_engine_consents_workspace_id"),
        ),
    )
    op.create_table(
        "041_hyper_personalization_engine_webhook_receipts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "id", name=op.f("pk_041_hyper_personalization_engine_webhook_receipts")
        ),
        sa.UniqueConstraint(
            "workspace_id",
            "digest",
            name=op.f("uq_041_hyper_personalization_engine_webhook_receipts_workspace_id"),
        ),
    )
    with op.batch_alter_table(
        "041_hyper_personalization_engine_webhook_receipts", schema=None
    ) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_041_hyper_personalization_engine_webhook_receipts_received_at"),
            ["received_at"],
            unique=False,
        )

    op.create_table(
        "041_hyper_personalization_engine_channel_settings",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["041_hyper_personalization_engine_workspaces.id"],
            name=op.f("fk_041_hyper_personalization_engine_channel_settings_workspace_id"),
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id",
            "channel",
            name=op.f("pk_041_hyper_personalization_engine_channel_settings"),
        ),
    )
    op.create_table(
        "041_hyper_personalization_engine_webhook_secrets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["041_hyper_personalization_engine_workspaces.id"],
            name=op.f("fk_041_hyper_personalization_engine_webhook_secrets_workspace_id"),
        ),
        sa.PrimaryKeyConstraint(
            "id", name=op.f("pk_041_hyper_personalization_engine_webhook_secrets")
        ),
    )
    with op.batch_alter_table(
        "041_hyper_personalization_engine_webhook_secrets", schema=None
    ) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_041_hyper_personalization_engine_webhook_secrets_workspace_id"),
            ["workspace_id"],
            unique=False,
        )

    op.create_table(
        "041_hyper_personalization_engine_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("config_id", sa.Uuid(), nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("action_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "recipient",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "variables",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'retrying', 'sent', 'failed')",
            name=op.f("ck_041_hyper_personalization_engine_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["config_id"],
            ["041_hyper_personalization_engine_configs.id"],
            name=op.f("fk_041_hyper_personalization_engine_deliveries_config_id"),
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["041_hyper_personalization_engine_decisions.id"],
            name=op.f("fk_041_hyper_personalization_engine_deliveries_decision_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_041_hyper_personalization_engine_deliveries")),
        sa.UniqueConstraint(
            "decision_id", name=op.f("uq_041_hyper_personalization_engine_deliveries_decision_id")
        ),
    )
    with op.batch_alter_table(
        "041_hyper_personalization_engine_deliveries", schema=None
    ) as batch_op:
        batch_op.create_index(
            "ix_041_hpe_deliveries_audience",
            ["config_id", "channel", "action_id", "sent_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table(
        "041_hyper_personalization_engine_deliveries", schema=None
    ) as batch_op:
        batch_op.drop_index("ix_041_hpe_deliveries_audience")

    op.drop_table("041_hyper_personalization_engine_deliveries")
    with op.batch_alter_table(
        "041_hyper_personalization_engine_webhook_secrets", schema=None
    ) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_041_hyper_personalization_engine_webhook_secrets_workspace_id")
        )

    op.drop_table("041_hyper_personalization_engine_webhook_secrets")
    op.drop_table("041_hyper_personalization_engine_channel_settings")
    with op.batch_alter_table(
        "041_hyper_personalization_engine_webhook_receipts", schema=None
    ) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_041_hyper_personalization_engine_webhook_receipts_received_at")
        )

    op.drop_table("041_hyper_personalization_engine_webhook_receipts")
    op.drop_table("041_hyper_personalization_engine_consents")
