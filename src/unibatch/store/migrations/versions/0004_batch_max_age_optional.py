"""batch max_age optional: without one, a job may run as long as its provider's own window

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.alter_column("max_age", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    # Batches that followed their provider's window get the old single default back.
    op.execute("UPDATE batches SET max_age = 93600 WHERE max_age IS NULL")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.alter_column("max_age", existing_type=sa.Float(), nullable=False)
