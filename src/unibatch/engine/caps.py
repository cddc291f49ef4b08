"""Spend caps while a batch runs: once what its results cost plus the estimate of the
requests still out passes its `max_cost`, the batch is cancelled. Its provider jobs are
cancelled as any cancel does them, and the results that came back are kept."""

from __future__ import annotations

import logging

from unibatch.engine.context import Context
from unibatch.types import BatchError

log = logging.getLogger("unibatch.engine")
MAX_COST_REACHED = "max_cost_reached"


async def enforce_cap(ctx: Context, batch_id: str) -> bool:
    """Cancel the batch if its spend is set to pass its cap; True when it was. Called
    each time results land (the cost of what is out is known only as an estimate, so
    the estimate of each unanswered request is its share of the batch's)."""
    spend = await ctx.store.spend(batch_id)
    if spend is None or spend["estimated_cost"] is None or not spend["request_total"]:
        return False
    total, finished = spend["request_total"], spend["finished"]
    if finished >= total:
        return False  # nothing left to stop: the batch ends as it is
    remaining = spend["estimated_cost"] * (total - finished) / total
    projected = spend["cost"] + remaining
    if projected <= spend["max_cost"]:
        return False
    message = (
        f"cancelled at its max_cost ${spend['max_cost']:.6f}: results so far cost "
        f"${spend['cost']:.6f} and the {total - finished} requests still out are estimated "
        f"at ${remaining:.6f}; the finished results are kept"
    )
    reason = BatchError(MAX_COST_REACHED, message, param="max_cost").as_dict()
    if await ctx.store.request_cancel(batch_id, ctx.clock(), reason=reason):
        log.warning("batch %s: %s", batch_id, message)
        return True
    return False
