"""costs: a batch's spend cap and estimated cost; the price a job's results were costed at

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batches made before caps existed have none: they run as before.
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_cost", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("estimated_cost", sa.Float(), nullable=True))
    # Jobs costed before this show no price with their results.
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("price", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("price")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_column("estimated_cost")
        batch_op.drop_column("max_cost")
