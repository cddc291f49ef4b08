"""failover: a batch's fallback models and the time after which a provider job is stuck

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batches made before failover existed have no fallback: they behave as before.
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fallback_models", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("stuck_after", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_column("stuck_after")
        batch_op.drop_column("fallback_models")
