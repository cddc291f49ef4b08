"""result cache: each request's cache key, indexed; the gateway keys' cache setting

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


_KEYED = sa.text("cache_hash IS NOT NULL")


def upgrade() -> None:
    # Nullable, so adding it rewrites no row: requests stored before have no key and are
    # never a cache answer. Only keyed requests (of batches submitted with the cache) are
    # indexed: an index of random hashes is slow to insert into.
    op.add_column("requests", sa.Column("cache_key", sa.LargeBinary(length=32), nullable=True))
    op.add_column("requests", sa.Column("cache_hash", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_requests_cache_hash",
        "requests",
        ["cache_hash"],
        postgresql_where=_KEYED,
        sqlite_where=_KEYED,
    )
    with op.batch_alter_table("gateway_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cache", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("cache_ttl", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gateway_keys", schema=None) as batch_op:
        batch_op.drop_column("cache_ttl")
        batch_op.drop_column("cache")
    op.drop_index("ix_requests_cache_hash", table_name="requests")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("cache_hash")
        batch_op.drop_column("cache_key")
