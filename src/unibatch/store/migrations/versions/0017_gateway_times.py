"""gateway times: when a batch's cancel was asked for, and when an uploaded file expires

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cancel_requested_at", sa.Float(), nullable=True))
    # Files uploaded before expiry existed keep forever, as they were promised.
    with op.batch_alter_table("gateway_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.Float(), nullable=True))
    op.create_index("ix_gateway_files_expires_at", "gateway_files", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_gateway_files_expires_at", table_name="gateway_files")
    with op.batch_alter_table("gateway_files", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_column("cancel_requested_at")
