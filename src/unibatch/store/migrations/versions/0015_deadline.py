"""deadline: when a batch must have ended, and when it stopped waiting for the Batch API

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_REALTIME = sa.text("mode = 'realtime'")


def upgrade() -> None:
    # Batches made before deadlines existed have none: they behave as before.
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deadline", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("deadline_switched_at", sa.Float(), nullable=True))
    # A deadline's estimate reads the latest real-time jobs of one model, in any batch.
    op.create_index(
        "ix_jobs_realtime_finished",
        "jobs",
        ["provider", "model", "finished_at"],
        postgresql_where=_REALTIME,
        sqlite_where=_REALTIME,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_realtime_finished", table_name="jobs")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_column("deadline_switched_at")
        batch_op.drop_column("deadline")
