"""Named operations of the queue-aware scheduler: a job is sent only while the provider's
queue has room for it, counted over every worker's jobs in the store.

The check and the claim are one transaction that holds the provider's queue lock (a
PostgreSQL transaction-level advisory lock; SQLite has one writer at a time anyway), so
two workers never both send jobs that together pass a limit: the second one sees the
first one's job in flight. A job holds its share of the queue from `submitting` until
the provider reports its batch ended (`ingesting`).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from unibatch.store.records import JobPhase
from unibatch.store.tables import jobs, queue_limits, requests
from unibatch.store.transitions import SENT_AGAIN, Transitions

# What each kind of limit counts of the jobs in flight.
ENQUEUED_TOKENS = "enqueued_tokens"
QUEUED_REQUESTS = "queued_requests"
CONCURRENT_BATCHES = "concurrent_batches"
KINDS = (ENQUEUED_TOKENS, QUEUED_REQUESTS, CONCURRENT_BATCHES)
_WORDS = {
    ENQUEUED_TOKENS: "enqueued tokens",
    QUEUED_REQUESTS: "queued requests",
    CONCURRENT_BATCHES: "batches",
}
# Phases in which a job's provider batch is (or may be) at the provider, unfinished.
IN_FLIGHT = (JobPhase.SUBMITTING.value, JobPhase.RUNNING.value)


@dataclass(frozen=True, slots=True)
class Limit:
    """One queue limit: at most `value` of `kind` in flight for `provider`, counted over
    the jobs of model `scope`, or of every model when `scope` is ""."""

    provider: str
    scope: str
    kind: str
    value: int

    def label(self) -> str:
        where = f"{self.provider}/{self.scope}" if self.scope else self.provider
        return f"{where} {_WORDS[self.kind]}"


@dataclass(frozen=True, slots=True)
class Need:
    """What one job takes of the queue while in flight."""

    model: str
    tokens: int
    requests: int

    def of(self, kind: str) -> int:
        if kind == ENQUEUED_TOKENS:
            return self.tokens
        return self.requests if kind == QUEUED_REQUESTS else 1


@dataclass(frozen=True, slots=True)
class Verdict:
    """A capacity check: `ok`, or why not; `too_big` is the limit the job passes on its own
    (it must be split before it can ever be sent)."""

    ok: bool
    reason: str | None = None
    too_big: Limit | None = None


def lock_key(provider: str) -> int:
    # Any stable 32-bit number per provider works: it only has to agree across processes.
    return zlib.crc32(f"unibatch-queue:{provider}".encode())


async def _lock(conn: AsyncConnection, provider: str) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(provider)})


async def _learned(conn: AsyncConnection, provider: str) -> dict[tuple[str, str], Any]:
    rows = await conn.execute(sa.select(queue_limits).where(queue_limits.c.provider == provider))
    return {(r["scope"], r["kind"]): r for r in rows.mappings()}


def apply_learned(
    configured: Sequence[Limit], learned: dict[tuple[str, str], Any], scopes: Sequence[Limit]
) -> list[Limit]:
    """The limits in force: each configured one lowered by what a refusal taught, as long
    as the configuration is what it was then (a deployment that changes its figure
    overrides the lesson). `scopes` are the limits that could be learned for the job even
    where none is configured (a refusal teaches a limit nobody set)."""
    out: dict[tuple[str, str], Limit] = {(lim.scope, lim.kind): lim for lim in configured}
    for slot in scopes:
        key = (slot.scope, slot.kind)
        row = learned.get(key)
        if row is None:
            continue
        current = out.get(key)
        if row["configured"] != (current.value if current else None):
            continue  # configured anew since: the configuration wins
        if current is None or row["learned"] < current.value:
            out[key] = replace(slot, value=int(row["learned"]))
    return list(out.values())


async def _in_flight(
    conn: AsyncConnection, provider: str, exclude: str | None = None
) -> dict[str, tuple[int, int, int]]:
    """Per model: (batches, requests, tokens) of the provider's jobs in flight."""
    c = jobs.c
    query = (
        sa.select(
            c.model,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(c.request_count), 0),
            sa.func.coalesce(sa.func.sum(c.input_tokens), 0),
        )
        .where(c.provider == provider, c.mode == "batch", c.phase.in_(IN_FLIGHT))
        .group_by(c.model)
    )
    if exclude is not None:
        query = query.where(c.id != exclude)
    rows = await conn.execute(query)
    return {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in rows}


def _held(flight: dict[str, tuple[int, int, int]], limit: Limit) -> int:
    index = KINDS.index(limit.kind)
    # Columns: batches, requests, tokens; kinds: tokens, requests, batches.
    column = 2 - index
    if limit.scope:
        return flight.get(limit.scope, (0, 0, 0))[column]
    return sum(values[column] for values in flight.values())


def check(limits: Sequence[Limit], flight: dict[str, tuple[int, int, int]], need: Need) -> Verdict:
    """Whether a job needing `need` fits next to the jobs in flight under every limit."""
    for limit in limits:
        wanted = need.of(limit.kind)
        if wanted > limit.value:
            reason = f"needs {wanted:,} of a {limit.value:,} limit of {limit.label()}"
            return Verdict(False, reason, too_big=limit)
        held = _held(flight, limit)
        if held + wanted > limit.value:
            reason = (
                f"waiting for capacity: {limit.label()} {held:,} in flight of a "
                f"{limit.value:,} limit; this job needs {wanted:,}"
            )
            return Verdict(False, reason)
    return Verdict(True)


class QueueOps(Transitions):
    """Mixed into `Store`."""

    engine: AsyncEngine

    async def claim_capacity(
        self,
        job_id: str,
        owner: str,
        need: Need,
        configured: Sequence[Limit],
        scopes: Sequence[Limit],
        *,
        attempts: int,
        retry_at: float,
    ) -> Verdict:
        """Check the provider's queue and, if the job fits, mark it `submitting` (it holds
        its share from now on), all under the provider's queue lock. A job that does not
        fit stays `pending`, says why, and is looked at again at `retry_at` (sooner when a
        job of its provider ends)."""
        provider = scopes[0].provider if scopes else ""
        async with self.engine.begin() as conn:
            await _lock(conn, provider)
            limits = apply_learned(configured, await _learned(conn, provider), scopes)
            verdict = check(limits, await _in_flight(conn, provider, exclude=job_id), need)
            base = jobs.update().where(jobs.c.id == job_id, jobs.c.lease_owner == owner)
            if verdict.too_big is not None:
                return verdict  # still leased: the caller splits the job
            if verdict.ok:
                values: dict[str, Any] = {
                    "phase": JobPhase.SUBMITTING,
                    "submit_attempts": attempts,
                    "queue_wait": None,
                }
            else:
                values = {
                    "queue_wait": verdict.reason,
                    "next_run_at": retry_at,
                    "lease_owner": None,
                    "lease_until": None,
                }
            done = await conn.execute(base.values(values))
            if not done.rowcount:
                return Verdict(False, "lease lost")
            return verdict

    async def learned_limits(self) -> dict[str, dict[tuple[str, str], Any]]:
        """Every learned limit, per provider, keyed (scope, kind) (a handful of rows)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(queue_limits))
            found: dict[str, dict[tuple[str, str], Any]] = {}
            for row in rows.mappings():
                found.setdefault(row["provider"], {})[(row["scope"], row["kind"])] = dict(row)
            return found

    async def limits_in_force(
        self, configured: Sequence[Limit], scopes: Sequence[Limit]
    ) -> list[Limit]:
        """The limits a planner splits jobs to (configured, lowered by what was learned)."""
        provider = scopes[0].provider if scopes else ""
        async with self.engine.connect() as conn:
            return apply_learned(configured, await _learned(conn, provider), scopes)

    async def queue_refused(
        self,
        job_id: str,
        owner: str,
        slot: Limit,
        need: Need,
        configured: int | None,
        error: str,
        *,
        now: float,
    ) -> int:
        """The provider refused the job's batch for its queue limit `slot` (its `value` is
        the limit in force when the job was sent). Learn a lower limit: what was in flight
        next to the job when it was refused, or half of it and the job together if that is
        more (a refusal says only that the two together were too much); keep it in the
        store; send the job back to wait. The learned limit."""
        async with self.engine.begin() as conn:
            await _lock(conn, slot.provider)
            flight = await _in_flight(conn, slot.provider, exclude=job_id)
            others = _held(flight, slot)
            wanted = need.of(slot.kind)
            learned = max(others, (others + wanted) // 2, 1)
            learned = min(learned, slot.value)
            row = {
                "learned": learned,
                "configured": configured,
                "learned_at": now,
                "reason": error,
            }
            key = {"provider": slot.provider, "scope": slot.scope, "kind": slot.kind}
            updated = await conn.execute(
                queue_limits.update()
                .where(*(queue_limits.c[k] == v for k, v in key.items()))
                .values(row)
            )
            if not updated.rowcount:
                await conn.execute(queue_limits.insert().values({**key, **row}))
            why = (
                f"refused by {slot.provider} ({error}); {slot.label()} limit lowered to {learned:,}"
            )
            await conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.lease_owner == owner)
                .values(
                    **SENT_AGAIN,
                    last_error=error,
                    queue_wait=why,
                    next_run_at=now,
                    lease_owner=None,
                    lease_until=None,
                )
            )
            return learned

    async def split_job(
        self, job_id: str, owner: str, parts: Sequence[tuple[str, int, int, int]], *, now: float
    ) -> bool:
        """Split a pending job in input order: each of `parts` (new job id, first seq,
        requests, tokens) takes the job's requests from its first seq up to the next
        part's; the job keeps those before the first part, and is due again at `now`,
        its lease released. One transaction; False if the lease was lost (nothing
        changed)."""
        async with self.engine.begin() as conn:
            row = (
                (
                    await conn.execute(
                        sa.select(jobs).where(
                            jobs.c.id == job_id,
                            jobs.c.lease_owner == owner,
                            jobs.c.phase == JobPhase.PENDING,
                        )
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                return False
            total = int(row["request_count"]) or 1
            bounds = [first for _, first, _, _ in parts] + [None]
            kept_requests = int(row["request_count"]) - sum(p[2] for p in parts)
            kept_tokens = int(row["input_tokens"]) - sum(p[3] for p in parts)
            for (new_id, first, count, tokens), end in zip(parts, bounds[1:], strict=True):
                await conn.execute(
                    jobs.insert().values(
                        {
                            **{k: v for k, v in row.items() if k != "id"},
                            "id": new_id,
                            "request_count": count,
                            "input_tokens": tokens,
                            # Bytes are not counted again: a share is close enough, as
                            # splitting only makes a job smaller than its byte limit.
                            "byte_count": int(row["byte_count"]) * count // total,
                            "lease_owner": None,
                            "lease_until": None,
                            "next_run_at": now,
                        }
                    )
                )
                where = [requests.c.job_id == job_id, requests.c.seq >= first]
                if end is not None:
                    where.append(requests.c.seq < end)
                await conn.execute(requests.update().where(*where).values(job_id=new_id))
            await conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id)
                .values(
                    request_count=kept_requests,
                    input_tokens=max(kept_tokens, 0),
                    byte_count=int(row["byte_count"]) * kept_requests // total,
                    next_run_at=now,
                    lease_owner=None,
                    lease_until=None,
                )
            )
            return True
