"""The webhook outbox: endpoints, events written with the batch change that causes them,
and their deliveries, leased and retried like jobs.

An event is inserted in the same transaction that ends (or retries) its batch, so a crash
can neither lose it nor send one for a change that did not commit. Deliveries are
at-least-once: a worker killed after the receiver got the request but before the outcome
was written sends it again, with the same `webhook-id`, which receivers deduplicate.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from unibatch.errors import InputError
from unibatch.ids import new_id
from unibatch.store.tables import batches, webhook_deliveries, webhook_endpoints, webhook_events
from unibatch.store.transitions import Transitions

Row = dict[str, Any]
deliveries = webhook_deliveries
endpoints = webhook_endpoints
events = webhook_events

# The event sent when a batch ends in each terminal status (OpenAI's batch event names).
ENDED = {
    "completed": "batch.completed",
    "failed": "batch.failed",
    "expired": "batch.expired",
    "cancelled": "batch.cancelled",
}
RETRYING = "batch.retrying"
TEST = "webhook.test"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks form: `whsec_` + base64 of 32
    random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check_secret(secret: str) -> str:
    """`secret` if it is a usable Standard Webhooks secret, else `InputError`."""
    raw = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise InputError(
            "a webhook secret is 'whsec_' followed by base64 of at least 16 random bytes",
            field="webhook_secret",
        )
    return secret


def check_url(url: str) -> str:
    if not url.startswith(("http://", "https://")) or len(url) > 2000:
        raise InputError(f"webhook URL {url!r} must be an http:// or https:// URL", field="webhook")
    return url


def payload(event_id: str, kind: str, subject: str, created_at: float) -> bytes:
    """The event body, shaped as OpenAI's webhook events: the subject's id only, so a
    receiver reads the current state from the API instead of trusting a stale copy."""
    return orjson.dumps(
        {
            "object": "event",
            "id": event_id,
            "type": kind,
            "created_at": int(created_at),
            "data": {"id": subject},
        }
    )


async def enqueue_event(conn: AsyncConnection, batch_id: str, kind: str, now: float) -> None:
    """Add a `kind` event of the batch and its deliveries, inside the caller's transaction
    (the one that makes the change the event tells of). Nothing for a batch that names no
    endpoint."""
    named = await conn.execute(sa.select(batches.c.webhooks).where(batches.c.id == batch_id))
    ids = list(named.scalar() or [])
    if ids:
        await _add_event(conn, ids, batch_id, kind, now)


async def _add_event(
    conn: AsyncConnection, endpoint_ids: list[str], subject: str, kind: str, now: float
) -> str | None:
    live = [
        r[0]
        for r in await conn.execute(
            sa.select(endpoints.c.id).where(
                endpoints.c.id.in_(endpoint_ids), endpoints.c.revoked_at.is_(None)
            )
        )
    ]
    if not live:
        return None
    event_id = new_id("evt")
    body = payload(event_id, kind, subject, now)
    await conn.execute(
        events.insert().values(
            id=event_id, batch_id=subject, type=kind, created_at=now, payload=body
        )
    )
    await conn.execute(
        deliveries.insert(),
        [
            {
                "id": new_id("whd"),
                "event_id": event_id,
                "endpoint_id": endpoint_id,
                "batch_id": subject,
                "state": PENDING,
                "attempts": 0,
                "next_run_at": now,
            }
            for endpoint_id in sorted(live)
        ],
    )
    return event_id


def counts_query() -> sa.Select[Any]:
    """Deliveries and their attempts by event type and state."""
    return (
        sa.select(
            events.c.type,
            deliveries.c.state,
            sa.func.count().label("deliveries"),
            sa.func.coalesce(sa.func.sum(deliveries.c.attempts), 0).label("attempts"),
        )
        .join(events, events.c.id == deliveries.c.event_id)
        .group_by(events.c.type, deliveries.c.state)
    )


@dataclass(frozen=True, slots=True)
class Delivery:
    """A claimed delivery, with what sending it needs."""

    id: str
    event_id: str
    batch_id: str
    type: str
    attempts: int
    url: str
    secret: str
    payload: bytes
    # The virtual key that registered the endpoint; None: the operator (master key, CLI
    # or Python API).
    key_id: str | None


def _endpoint(url: str, key_id: str | None, secret: str, scope: str, now: float) -> Row:
    return {
        "id": new_id("we"),
        "key_id": key_id,
        "url": check_url(url),
        "secret": check_secret(secret),
        "scope": scope,
        "created_at": now,
        "revoked_at": None,
    }


def _owned(key_id: str | None) -> sa.ColumnElement[bool]:
    c = endpoints.c.key_id
    return c.is_(None) if key_id is None else c == key_id


class WebhookOps(Transitions):
    """Mixed into `Store`: webhook endpoints, events and deliveries."""

    engine: AsyncEngine

    # -- endpoints -------------------------------------------------------------------

    async def add_endpoint(
        self, url: str, *, key_id: str | None, now: float, secret: str | None = None
    ) -> Row:
        """Register an endpoint told of every batch of `key_id` (None: the master key, the
        CLI and the Python API); its row, with the secret (shown to the caller once)."""
        row = _endpoint(url, key_id, secret or new_secret(), "all", now)
        async with self.engine.begin() as conn:
            await conn.execute(endpoints.insert().values(row))
        return row

    async def list_endpoints(self, key_id: str | None, *, every_key: bool = False) -> list[Row]:
        """Live endpoints of `key_id` (of every key with `every_key`), oldest first."""
        query = sa.select(endpoints).where(endpoints.c.revoked_at.is_(None))
        if not every_key:
            query = query.where(_owned(key_id))
        async with self.engine.connect() as conn:
            rows = await conn.execute(query.order_by(endpoints.c.created_at))
            return [dict(r) for r in rows.mappings()]

    async def revoke_endpoint(
        self, endpoint_id: str, key_id: str | None, *, now: float, every_key: bool = False
    ) -> bool:
        """Stop sending to an endpoint (deliveries not yet made are dropped with it)."""
        where = sa.and_(endpoints.c.id == endpoint_id, endpoints.c.revoked_at.is_(None))
        if not every_key:
            where = sa.and_(where, _owned(key_id))
        async with self.engine.begin() as conn:
            done = await conn.execute(endpoints.update().where(where).values(revoked_at=now))
            if done.rowcount:
                await conn.execute(
                    deliveries.update()
                    .where(deliveries.c.endpoint_id == endpoint_id, deliveries.c.state == PENDING)
                    .values(state=FAILED, last_error="endpoint removed", next_run_at=None)
                )
            return bool(done.rowcount)

    async def webhook_targets(
        self, url: str | None, key_id: str | None, *, new_secret: str | None, now: float
    ) -> tuple[list[str], Row | None]:
        """The endpoints a new batch of `key_id` notifies: every endpoint of the key, and
        the one for `url` (the batch's own webhook). A `url` the key never registered is
        registered for this batch alone with `new_secret` (returned as the new row), or,
        with no `new_secret`, refused: its receiver could not check signatures."""
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    sa.select(endpoints.c.id, endpoints.c.url, endpoints.c.scope).where(
                        _owned(key_id), endpoints.c.revoked_at.is_(None)
                    )
                )
            ).all()
            ids = {r[0] for r in rows if r[2] == "all"}
            if url is None:
                return sorted(ids), None
            matching = [r[0] for r in rows if r[1] == url]
            if matching:
                return sorted(ids | {matching[0]}), None
            if new_secret is None:
                raise InputError(
                    f"webhook URL {url!r} is not a registered endpoint: register it first "
                    "(`unibatch webhooks add URL`, POST /v1/webhooks) to get its signing "
                    "secret, or set UNIBATCH_WEBHOOK_SECRET",
                    field="webhook",
                )
            row = _endpoint(url, key_id, new_secret, "batch", now)
            await conn.execute(endpoints.insert().values(row))
            return sorted(ids | {str(row["id"])}), row

    async def send_test_event(self, endpoint_id: str, *, now: float) -> str | None:
        """Queue a `webhook.test` event to one endpoint; its id (None: no such endpoint)."""
        async with self.engine.begin() as conn:
            return await _add_event(conn, [endpoint_id], endpoint_id, TEST, now)

    # -- deliveries ------------------------------------------------------------------

    async def claim_deliveries(
        self,
        owner: str,
        now: float,
        *,
        lease: float,
        limit: int = 10,
        batch_id: str | None = None,
        exclude: Collection[str] = (),
    ) -> list[Delivery]:
        """Lease up to `limit` deliveries due now, earliest first."""
        where = sa.and_(deliveries.c.state == PENDING, deliveries.c.next_run_at <= now)
        if batch_id is not None:
            where = sa.and_(where, deliveries.c.batch_id == batch_id)
        claimed = await self._claim(  # type: ignore[attr-defined]
            deliveries, where, deliveries.c.next_run_at, owner, now, lease, limit, exclude
        )
        if not claimed:
            return []
        query = (
            sa.select(
                deliveries.c.id,
                deliveries.c.event_id,
                deliveries.c.batch_id,
                events.c.type,
                deliveries.c.attempts,
                endpoints.c.url,
                endpoints.c.secret,
                events.c.payload,
                endpoints.c.key_id,
            )
            .join(events, events.c.id == deliveries.c.event_id)
            .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
            .where(deliveries.c.id.in_([r["id"] for r in claimed]))
        )
        async with self.engine.connect() as conn:
            return [Delivery(*r) for r in await conn.execute(query)]

    async def delivery_attempted(
        self,
        delivery_id: str,
        owner: str,
        *,
        attempts: int,
        status: int | None,
        error: str | None,
        now: float,
        retry_at: float | None,
    ) -> bool:
        """Record one attempt: delivered (no `error`), due again at `retry_at`, or given up
        (neither). False when the lease was lost (another worker sends it)."""
        state = DELIVERED if error is None else (PENDING if retry_at is not None else FAILED)
        values: Row = {
            "state": state,
            "attempts": attempts,
            "last_status": status,
            "last_error": error,
            "next_run_at": retry_at,
        }
        if error is None:
            values["delivered_at"] = now
        return await self._update_leased(deliveries, delivery_id, owner, True, values)

    async def list_deliveries(
        self,
        *,
        batch_id: str | None = None,
        state: str | None = None,
        limit: int = 100,
    ) -> list[Row]:
        """Deliveries, newest first, with their event type and endpoint URL."""
        query = (
            sa.select(
                deliveries,
                events.c.type,
                events.c.created_at,
                endpoints.c.url,
            )
            .join(events, events.c.id == deliveries.c.event_id)
            .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
            .order_by(events.c.created_at.desc(), deliveries.c.id.desc())
            .limit(limit)
        )
        if batch_id is not None:
            query = query.where(deliveries.c.batch_id == batch_id)
        if state is not None:
            query = query.where(deliveries.c.state == state)
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def redeliver(self, ident: str, *, now: float) -> int:
        """Send an event (`evt_...`: to each of its endpoints) or one delivery (`whd_...`)
        again from the start of the retry schedule; how many deliveries that queued. A
        delivery under way now is left to finish."""
        column = deliveries.c.event_id if ident.startswith("evt_") else deliveries.c.id
        async with self.engine.begin() as conn:
            done = await conn.execute(
                deliveries.update()
                .where(
                    column == ident,
                    deliveries.c.lease_owner.is_(None),
                    # Not to an endpoint removed since.
                    deliveries.c.endpoint_id.in_(
                        sa.select(endpoints.c.id).where(endpoints.c.revoked_at.is_(None))
                    ),
                )
                .values(state=PENDING, attempts=0, next_run_at=now, last_error=None)
            )
            return int(done.rowcount)

    async def delivery_counts(self) -> list[Row]:
        """How many deliveries there are and how many attempts they took, by event type
        and state (for metrics and `webhooks list`)."""
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(counts_query())).mappings()]

    async def first_delivery_pending(self, batch_id: str) -> bool:
        """Whether a delivery of the batch has not been tried even once yet (`wait` keeps
        driving the batch until each has been tried)."""
        query = sa.select(deliveries.c.id).where(
            deliveries.c.batch_id == batch_id,
            deliveries.c.state == PENDING,
            deliveries.c.attempts == 0,
        )
        async with self.engine.connect() as conn:
            return (await conn.execute(query.limit(1))).first() is not None
