"""ix_jobs_due: unfinished jobs by next_run_at, for the claim query

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_UNFINISHED = sa.text("phase <> 'done'")


def upgrade() -> None:
    # The claim asks for the earliest due unfinished jobs; without this index PostgreSQL
    # read and sorted every job for each claim (10,000 jobs: ~9 ms a claim).
    op.create_index(
        "ix_jobs_due",
        "jobs",
        ["next_run_at"],
        postgresql_where=_UNFINISHED,
        sqlite_where=_UNFINISHED,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_due", table_name="jobs")
