"""real-time runner: send markers, and costs that may be unknown

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "realtime_sends",
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("custom_id", sa.String(length=512), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("first_sent_at", sa.Float(), nullable=False),
        sa.Column("last_sent_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", "custom_id"),
    )
    op.create_index("ix_realtime_sends_job_id", "realtime_sends", ["job_id"])
    # A model without a known price (a local server's) costs NULL, not 0, in its result
    # and in the earlier attempts that retries keep.
    for table in ("results", "attempts"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("cost_input", existing_type=sa.Float(), nullable=True)
            batch_op.alter_column("cost_output", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    for table in ("results", "attempts"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("cost_input", existing_type=sa.Float(), nullable=False)
            batch_op.alter_column("cost_output", existing_type=sa.Float(), nullable=False)
    op.drop_index("ix_realtime_sends_job_id", table_name="realtime_sends")
    op.drop_table("realtime_sends")
