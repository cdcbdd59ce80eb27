"""The satisfaction survey (SC-003): each person's answers (or dismissals) per workspace.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

P = "041_hyper_personalization_engine_"


def upgrade() -> None:
    op.create_table(
        P + "survey_answers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "score IS NULL OR (score >= 1 AND score <= 5)",
            name=op.f(f"ck_{P}survey_answers_score"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], [P + "users.id"], name=op.f(f"fk_{P}survey_answers_user_id")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            [P + "workspaces.id"],
            name=op.f(f"fk_{P}survey_answers_workspace_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{P}survey_answers")),
    )
    with op.batch_alter_table(P + "survey_answers") as batch_op:
        batch_op.create_index(
            "ix_041_hpe_survey_answers_user_created", ["user_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_041_hpe_survey_answers_workspace_created",
            ["workspace_id", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table(P + "survey_answers") as batch_op:
        batch_op.drop_index("ix_041_hpe_survey_answers_workspace_created")
        batch_op.drop_index("ix_041_hpe_survey_answers_user_created")
    op.drop_table(P + "survey_answers")
