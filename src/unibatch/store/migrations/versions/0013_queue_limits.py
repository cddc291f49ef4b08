"""queue limits: each job's input tokens, why it waits, and limits learned from refusals

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Jobs planned before queue limits count no tokens: they pass every token limit, as
    # they did before.
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("input_tokens", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("queue_wait", sa.Text(), nullable=True))
    op.create_table(
        "queue_limits",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("learned", sa.BigInteger(), nullable=False),
        sa.Column("configured", sa.BigInteger(), nullable=True),
        sa.Column("learned_at", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("provider", "scope", "kind"),
    )


def downgrade() -> None:
    op.drop_table("queue_limits")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("queue_wait")
        batch_op.drop_column("input_tokens")
