"""Model versions keep the learner's state beside the model (the drift detector, the new
actions on trial); decisions on a chosen channel keep each eligible entry's channel.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

P = "041_hyper_personalization_engine_"
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    # Nullable, no default: adding them rewrites nothing, even on a big decisions table.
    with op.batch_alter_table(P + "model_versions") as batch_op:
        batch_op.add_column(sa.Column("state", _JSON, nullable=True))
    with op.batch_alter_table(P + "decisions") as batch_op:
        batch_op.add_column(sa.Column("eligible_channels", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table(P + "decisions") as batch_op:
        batch_op.drop_column("eligible_channels")
    with op.batch_alter_table(P + "model_versions") as batch_op:
        batch_op.drop_column("state")
