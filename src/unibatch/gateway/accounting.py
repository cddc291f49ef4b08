"""Usage accounting: the result hook that records one usage event per result of a gateway
batch.

Whichever process ingests a gateway batch's results (the server's own worker, a
`unibatch worker`, a `Client` driving `wait`) must record its usage, in the transaction
that stores the results. The engine knows nothing of keys and budgets: each front end
composes `result_hooks()` into the engines it builds.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from unibatch.codec import ResultRecord, record_dicts
from unibatch.gateway.tables import gateway_batches, gateway_usage
from unibatch.store.ops import ResultHook, insert_ignore
from unibatch.store.tables import jobs


def result_hooks() -> list[ResultHook]:
    """The hooks an engine needs to ingest gateway batches (pass to `Engine`)."""
    return [record_usage]


async def record_usage(conn: AsyncConnection, batch_id: str, records: list[ResultRecord]) -> None:
    """Result hook: one usage event per result row of a gateway batch.

    Runs in the transaction that stores the rows, so events commit with them; the primary
    key (batch, custom_id, job) turns a replay after a crash into a no-op, and lets each
    attempt of a retried request count."""
    owner = (
        await conn.execute(
            sa.select(gateway_batches.c.key_id).where(gateway_batches.c.batch_id == batch_id)
        )
    ).first()
    if owner is None:
        return  # not created through the gateway
    rows = record_dicts(records)
    job_ids = sorted({row["job_id"] for row in rows})
    models = {
        r.id: (r.provider, r.model)
        for r in await conn.execute(
            sa.select(jobs.c.id, jobs.c.provider, jobs.c.model).where(jobs.c.id.in_(job_ids))
        )
    }
    now = time.time()
    events = [
        {
            "batch_id": batch_id,
            "custom_id": row["custom_id"],
            "job_id": row["job_id"],
            "key_id": owner.key_id,
            "provider": models.get(row["job_id"], ("unknown", "unknown"))[0],
            "model": models.get(row["job_id"], ("unknown", "unknown"))[1],
            "status": row["status"],
            "input_tokens": row.get("input_tokens") or 0,
            "output_tokens": row.get("output_tokens") or 0,
            "cached_tokens": row.get("cached_tokens") or 0,
            "reasoning_tokens": row.get("reasoning_tokens") or 0,
            "cost": float(row.get("cost_input") or 0.0) + float(row.get("cost_output") or 0.0),
            "created_at": now,
        }
        for row in rows
    ]
    await conn.execute(insert_ignore(conn.dialect.name, gateway_usage), events)
