"""retries: a batch's attempt limit, each request's attempt count, earlier attempts kept

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batches made before retries existed keep their behaviour: one attempt each.
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="1")
        )
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("max_attempts", sa.Integer(), nullable=True))
    op.create_table(
        "attempts",
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("custom_id", sa.String(length=512), nullable=False),
        sa.Column("attempt", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("retryable", sa.Boolean(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cached_tokens", sa.Integer(), nullable=False),
        sa.Column("reasoning_tokens", sa.Integer(), nullable=False),
        sa.Column("cache_write_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_input", sa.Float(), nullable=False),
        sa.Column("cost_output", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", "custom_id", "attempt"),
    )

    # Usage events per attempt: a retried request is billed once per job that ran it.
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("gateway_usage_pkey", "gateway_usage", type_="primary")
        op.add_column(
            "gateway_usage",
            sa.Column("job_id", sa.String(length=64), nullable=False, server_default=""),
        )
        op.create_primary_key(
            "gateway_usage_pkey", "gateway_usage", ["batch_id", "custom_id", "job_id"]
        )
    else:
        # SQLite cannot change a primary key in place: a copy of the table takes over.
        op.create_table(
            "gateway_usage_new",
            sa.Column("batch_id", sa.String(length=64), nullable=False),
            sa.Column("custom_id", sa.String(length=512), nullable=False),
            sa.Column("job_id", sa.String(length=64), nullable=False, server_default=""),
            *(sa.Column(name, kind, nullable=nullable) for name, kind, nullable in _USAGE),
            sa.PrimaryKeyConstraint("batch_id", "custom_id", "job_id"),
        )
        names = ", ".join(["batch_id", "custom_id", *(name for name, _, _ in _USAGE)])
        op.execute(f"INSERT INTO gateway_usage_new ({names}) SELECT {names} FROM gateway_usage")
        op.drop_table("gateway_usage")
        op.rename_table("gateway_usage_new", "gateway_usage")
        op.create_index(
            "ix_gateway_usage_key_model", "gateway_usage", ["key_id", "provider", "model"]
        )


# The columns of gateway_usage besides its key, as 0002 made them.
_USAGE = (
    ("key_id", sa.String(length=64), True),
    ("provider", sa.String(length=32), False),
    ("model", sa.String(length=128), False),
    ("status", sa.String(length=12), False),
    ("input_tokens", sa.Integer(), False),
    ("output_tokens", sa.Integer(), False),
    ("cached_tokens", sa.Integer(), False),
    ("reasoning_tokens", sa.Integer(), False),
    ("cost", sa.Float(), False),
    ("created_at", sa.Float(), False),
)


def downgrade() -> None:
    # One usage event per request again: the earlier attempts' events go.
    op.execute(
        "DELETE FROM gateway_usage WHERE job_id <> (SELECT MAX(u.job_id) FROM gateway_usage u "
        "WHERE u.batch_id = gateway_usage.batch_id AND u.custom_id = gateway_usage.custom_id)"
    )
    with op.batch_alter_table("gateway_usage", recreate="always") as batch_op:
        batch_op.drop_column("job_id")
        batch_op.create_primary_key("gateway_usage_pkey", ["batch_id", "custom_id"])
    op.drop_table("attempts")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("max_attempts")
        batch_op.drop_column("attempts")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_column("max_attempts")
