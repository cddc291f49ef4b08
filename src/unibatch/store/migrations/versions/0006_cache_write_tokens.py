"""cache write tokens: input tokens written to a provider's prompt cache, per result and
per batch (existing rows count none)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table, kind in (("results", sa.Integer()), ("batches", sa.BigInteger())):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("cache_write_tokens", kind, nullable=False, server_default="0")
            )


def downgrade() -> None:
    for table in ("results", "batches"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("cache_write_tokens")
