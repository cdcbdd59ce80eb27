"""Events out: outgoing webhook endpoints, their messages and each delivery attempt.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

P = "041_hyper_personalization_engine_"
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        P + "webhook_endpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("event_types", JSON, nullable=False),
        sa.Column("secret_nonce", sa.String(length=64), nullable=False),
        sa.Column("secret_hint", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('enabled', 'disabled')", name=op.f(f"ck_{P}webhook_endpoints_status")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            [P + "workspaces.id"],
            name=op.f(f"fk_{P}webhook_endpoints_workspace_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{P}webhook_endpoints")),
    )
    with op.batch_alter_table(P + "webhook_endpoints") as batch_op:
        batch_op.create_index(
            batch_op.f(f"ix_{P}webhook_endpoints_workspace_id"), ["workspace_id"], unique=False
        )
    op.create_table(
        P + "webhook_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'retrying', 'delivered', 'failed')",
            name=op.f(f"ck_{P}webhook_messages_status"),
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            [P + "webhook_endpoints.id"],
            name=op.f(f"fk_{P}webhook_messages_endpoint_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{P}webhook_messages")),
    )
    with op.batch_alter_table(P + "webhook_messages") as batch_op:
        batch_op.create_index(
            "ix_041_hpe_webhook_messages_endpoint", ["endpoint_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_041_hpe_webhook_messages_status", ["status", "updated_at"], unique=False
        )
    op.create_table(
        P + "webhook_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            [P + "webhook_endpoints.id"],
            name=op.f(f"fk_{P}webhook_attempts_endpoint_id"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            [P + "webhook_messages.id"],
            name=op.f(f"fk_{P}webhook_attempts_message_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{P}webhook_attempts")),
    )
    with op.batch_alter_table(P + "webhook_attempts") as batch_op:
        batch_op.create_index(
            batch_op.f(f"ix_{P}webhook_attempts_message_id"), ["message_id"], unique=False
        )
        batch_op.create_index(
            "ix_041_hpe_webhook_attempts_endpoint", ["endpoint_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table(P + "webhook_attempts") as batch_op:
        batch_op.drop_index("ix_041_hpe_webhook_attempts_endpoint")
        batch_op.drop_index(batch_op.f(f"ix_{P}webhook_attempts_message_id"))
    op.drop_table(P + "webhook_attempts")
    with op.batch_alter_table(P + "webhook_messages") as batch_op:
        batch_op.drop_index("ix_041_hpe_webhook_messages_status")
        batch_op.drop_index("ix_041_hpe_webhook_messages_endpoint")
    op.drop_table(P + "webhook_messages")
    with op.batch_alter_table(P + "webhook_endpoints") as batch_op:
        batch_op.drop_index(batch_op.f(f"ix_{P}webhook_endpoints_workspace_id"))
    op.drop_table(P + "webhook_endpoints")
