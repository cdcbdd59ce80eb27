"""Idempotency keys: a request's first answer kept under its key (imports; issue 14).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

P = "041_hyper_personalization_engine_"


def upgrade() -> None:
    op.create_table(
        P + "idempotency_keys",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column(
            "response",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            [P + "workspaces.id"],
            name=op.f(f"fk_{P}idempotency_keys_workspace_id"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", "key", name=op.f(f"pk_{P}idempotency_keys")),
    )


def downgrade() -> None:
    op.drop_table(P + "idempotency_keys")
