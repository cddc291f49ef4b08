"""Job steps: run one step of a claimed job with the runner of its mode, and retry the
failures that time or the user can fix.

Each step runs under the job's lease and ends by writing the job's next phase. No network
call happens inside a database transaction: read, call the provider, then write.
"""

from __future__ import annotations

import logging

from unibatch.engine.context import Context
from unibatch.engine.runners import RUNNERS
from unibatch.engine.schedule import retry_delay
from unibatch.errors import ConfigurationError, TransientProviderError
from unibatch.store.records import JobRecord

log = logging.getLogger("unibatch.engine")


async def run_job_step(ctx: Context, job: JobRecord) -> None:
    """Advance one claimed job by one step, whatever its mode and phase."""
    try:
        await RUNNERS[job.mode].step(ctx, job)
    except TransientProviderError as exc:
        attempts = job.transient_errors + 1
        delay = retry_delay(ctx.settings.poll_schedule, attempts, exc.retry_after)
        log.warning("job %s: %s; retrying in %.1fs", job.id, exc, delay)
        await ctx.store.retry_job_later(
            job.id, ctx.owner, str(exc), at=ctx.clock() + delay, transient_errors=attempts
        )
    except ConfigurationError as exc:
        # A missing key is fixed by the user, not by time: keep the job and say why.
        log.error("job %s: %s", job.id, exc)
        await ctx.store.retry_job_later(
            job.id, ctx.owner, str(exc), at=ctx.clock() + ctx.settings.poll_schedule[-1]
        )
