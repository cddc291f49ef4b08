"""Failover: the unfinished requests of a provider job that failed, or that was stuck past
the batch's `stuck_after` and cancelled (`unibatch.engine.runners.batch`), move to the
batch's next fallback model, through that provider's Batch API, as follow-up jobs of the
same batch.

The move is planned when the batch's round ends, in the transaction that closes it
(`Store.finalize`), exactly like automatic retries: a crash before the commit leaves the
failed job's requests where they were, to be planned again; after it, the follow-up jobs
are ordinary pending jobs. A request the fallback's rules refuse stays with its error,
which says why; the next fallback in the list is tried first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from unibatch.engine.context import Context
from unibatch.engine.retry import Moves, target_model
from unibatch.errors import InputError, UnibatchError
from unibatch.store.retries import Chooser, FailoverChoice

# Without `--stuck-after`, a provider job waits this long in validating / in_progress
# before it is cancelled and its requests move on (OpenAI and Anthropic promise results
# within 24 h; most batches finish within a few hours).
DEFAULT_STUCK_AFTER = 6 * 3600.0


def check_fallbacks(ctx: Context, models: Sequence[str] | None) -> list[str]:
    """The fallback models as `provider/model`, each checked once (a known provider with
    a key); raises `InputError` naming the bad one."""
    checked: list[str] = []
    for model in models or ():
        if not isinstance(model, str) or not model.strip():
            raise InputError(f"fallback model {model!r} is empty", field="fallback_models")
        try:
            provider, bare = target_model(ctx, model.strip())
        except InputError as exc:
            raise InputError(f"fallback {exc.detail}", field="fallback_models") from None
        name = f"{provider}/{bare}"
        if name not in checked:
            checked.append(name)
    return checked


def stuck_limit(
    fallbacks: Sequence[str], stuck_after: float | None, default: float
) -> float | None:
    """Seconds before a job counts as stuck: only a batch with a fallback has one."""
    if not fallbacks:
        if stuck_after is not None:
            raise InputError(
                "stuck_after needs a fallback model to move the requests to",
                field="stuck_after",
            )
        return None
    limit = default if stuck_after is None else stuck_after
    if limit <= 0:
        raise InputError(f"stuck_after must be positive, not {limit!r}", field="stuck_after")
    return float(limit)


def next_model(fallbacks: Sequence[str], provider: str, model: str) -> Iterable[str]:
    """The fallbacks still to try for a request that ran on `provider/model`: those after
    it in the list, or all of them when it ran on the batch's own model."""
    here = f"{provider}/{model}"
    if here in fallbacks:
        return fallbacks[fallbacks.index(here) + 1 :]
    return fallbacks


def chooser(
    ctx: Context,
    batch_id: str,
    fallbacks: Sequence[str],
    more_attempts: int,
    *,
    realtime: bool = False,
) -> Chooser:
    """What `Store.finalize` calls with the requests of failed jobs: the follow-up jobs to
    create on their fallbacks and, per request no fallback takes, why. With `realtime`
    (a batch past its deadline's switch-over) the follow-up jobs run in real time."""

    # Checked once per planning, not per request. A fallback that cannot be used any
    # more (its key is gone from this worker's environment) refuses every request.
    targets: dict[str, tuple[str, str] | str] = {}
    for name in fallbacks:
        try:
            targets[name] = target_model(ctx, name)
        except UnibatchError as exc:
            targets[name] = str(exc)

    def choose(rows: Sequence[Mapping[str, Any]]) -> FailoverChoice:
        moves = Moves(ctx, batch_id, realtime=realtime)
        refused: dict[str, str] = {}
        for row in rows:
            reasons = []
            for fallback in next_model(fallbacks, row["provider"], row["model"]):
                target = targets[fallback]
                refusal = target if isinstance(target, str) else moves.place(row, target)
                if refusal is None:
                    break
                reasons.append(f"fallback {fallback} refused it: {refusal}")
            else:
                if reasons:
                    refused[row["custom_id"]] = "; ".join(reasons)
        return FailoverChoice(moves.follow_ups(more_attempts), refused)

    return choose
