"""People: dashboard users, their roles per workspace, the first-run setup link; activity
actors long enough for a person's address.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

P = "041_hyper_personalization_engine_"


def upgrade() -> None:
    op.create_table(
        P + "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("failed_sign_ins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{P}users")),
        sa.UniqueConstraint("email", name=op.f(f"uq_{P}users_email")),
    )
    op.create_table(
        P + "memberships",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('viewer', 'editor', 'admin')", name=op.f(f"ck_{P}memberships_role")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], [P + "users.id"], name=op.f(f"fk_{P}memberships_user_id")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], [P + "workspaces.id"], name=op.f(f"fk_{P}memberships_workspace_id")
        ),
        sa.PrimaryKeyConstraint("user_id", "workspace_id", name=op.f(f"pk_{P}memberships")),
    )
    with op.batch_alter_table(P + "memberships") as batch_op:
        batch_op.create_index("ix_041_hpe_memberships_workspace", ["workspace_id"], unique=False)
    op.create_table(
        P + "setup_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f(f"pk_{P}setup_tokens")),
    )
    with op.batch_alter_table(P + "activities") as batch_op:
        batch_op.alter_column(
            "actor", existing_type=sa.String(length=64), type_=sa.String(length=320)
        )


def downgrade() -> None:
    with op.batch_alter_table(P + "activities") as batch_op:
        batch_op.alter_column(
            "actor", existing_type=sa.String(length=320), type_=sa.String(length=64)
        )
    op.drop_table(P + "setup_tokens")
    with op.batch_alter_table(P + "memberships") as batch_op:
        batch_op.drop_index("ix_041_hpe_memberships_workspace")
    op.drop_table(P + "memberships")
    op.drop_table(P + "users")
