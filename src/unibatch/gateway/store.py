"""Named store operations of the gateway: keys, files, batch ownership, budgets, usage.

Ownership is a `key_id` column; None means the master key. A `scope` argument of None
means "every owner" (what the master key sees); otherwise only rows of that key match,
so one key can never read another's rows through these operations.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from unibatch.errors import BudgetExceededError, IdempotencyConflictError
from unibatch.gateway.tables import (
    gateway_batches,
    gateway_files,
    gateway_idempotency,
    gateway_keys,
    gateway_output_sizes,
    gateway_usage,
)
from unibatch.store.ops import BatchState, Store, insert_ignore, state_of
from unibatch.store.tables import batches
from unibatch.types import TERMINAL_BATCH_STATUSES

Row = dict[str, Any]
_TERMINAL = [s.value for s in TERMINAL_BATCH_STATUSES]
# A reservation whose batch never appeared (the process died between the two writes)
# stops counting against the budget after this long.
_ORPHAN_RESERVATION_SECONDS = 3600.0
# A server starting up releases sooner the reservations of creates that died: those at
# least this old whose batch does not exist. Another server on the same database may be
# mid-create, its reservation committed and its batch not yet (the import is one
# transaction, invisible until it commits). Its create is younger than this: importing a
# file of the largest body the gateway takes (200 MB by default) takes a minute or two.
ORPHAN_SWEEP_MARGIN_SECONDS = 600.0
Scope = str | None
# How long an Idempotency-Key keeps returning the batch it made.
IDEMPOTENCY_SECONDS = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Idempotency:
    """A create's `Idempotency-Key`: per caller (a key id, "" for the master key), with
    the SHA-256 of its request body."""

    caller: str
    key: str
    request_hash: str


def _owned(column: sa.ColumnElement[Any], scope: Scope) -> sa.ColumnElement[bool]:
    return sa.true() if scope is None else column == scope


# A batch's gateway row, made up for a batch created outside the gateway (CLI, Python
# API), which only the master key sees: no owner, no input file, no reservation.
_GB = gateway_batches.c
_OWNER_COLUMNS = (
    batches.c.id.label("batch_id"),
    _GB.key_id,
    _GB.input_file_id,
    sa.func.coalesce(_GB.completion_window, "24h").label("completion_window"),
    sa.func.coalesce(_GB.estimated_cost, 0.0).label("estimated_cost"),
    sa.func.coalesce(_GB.created_at, batches.c.created_at).label("created_at"),
)
_ANY_BATCH = batches.outerjoin(gateway_batches, _GB.batch_id == batches.c.id)
_KEY_BATCH = batches.join(gateway_batches, _GB.batch_id == batches.c.id)
_BY_ID = batches.c.id == sa.bindparam("batch_id")

# Statements of every read of a batch, built once (see unibatch.store.ops._BATCH).
_ANY_OWNER = sa.select(*_OWNER_COLUMNS).select_from(_ANY_BATCH).where(_BY_ID)
_OWNER = (
    sa.select(*_OWNER_COLUMNS)
    .select_from(_KEY_BATCH)
    .where(_BY_ID, _GB.key_id == sa.bindparam("scope"))
)
_KEY_BY_HASH = sa.select(gateway_keys).where(gateway_keys.c.key_hash == sa.bindparam("key_hash"))


def _one_owned(conn: sa.Connection, batch_id: str, scope: Scope) -> Row | None:
    params = {"batch_id": batch_id} if scope is None else {"batch_id": batch_id, "scope": scope}
    row = conn.execute(_OWNER if scope is not None else _ANY_OWNER, params).mappings().first()
    return None if row is None else dict(row)


def key_by_hash(conn: sa.Connection, key_hash: str) -> Row | None:
    """The key whose SHA-256 is `key_hash` (a synchronous read for `Store.read`)."""
    row = conn.execute(_KEY_BY_HASH, {"key_hash": key_hash}).mappings().first()
    return None if row is None else dict(row)


# The gateway's row and the engine's, in one statement: the engine's columns keep their
# names, the gateway's are prefixed (both tables have `created_at`).
_OWNER_PREFIX = "owner_"
_OWNED_COLUMNS = (*(c.label(_OWNER_PREFIX + c.name) for c in _OWNER_COLUMNS), *batches.c)
_ANY_OWNED_STATE = sa.select(*_OWNED_COLUMNS).select_from(_ANY_BATCH).where(_BY_ID)
_OWNED_STATE = (
    sa.select(*_OWNED_COLUMNS)
    .select_from(_KEY_BATCH)
    .where(_BY_ID, _GB.key_id == sa.bindparam("scope"))
)


def owned_batch_state(
    conn: sa.Connection, batch_id: str, scope: Scope
) -> tuple[Row, BatchState] | None:
    """The gateway row and the engine's state of a batch the scope may see (one still
    being imported included), in one read; None: absent or not theirs."""
    if scope is None:
        found = conn.execute(_ANY_OWNED_STATE, {"batch_id": batch_id}).first()
    else:
        found = conn.execute(_OWNED_STATE, {"batch_id": batch_id, "scope": scope}).first()
    if found is None:
        return None
    row = found._asdict()
    owner = {c.name: row.pop(_OWNER_PREFIX + c.name) for c in _OWNER_COLUMNS}
    return owner, state_of(conn, row)


def _live(now: float) -> sa.ColumnElement[bool]:
    return sa.or_(gateway_files.c.expires_at.is_(None), gateway_files.c.expires_at > now)


def _all_files(scope: Scope, generated: Mapping[str, str], now: float) -> sa.CompoundSelect[Any]:
    """Uploads and generated files as one relation of File objects' columns."""
    f = gateway_files.c
    uploads = sa.select(
        f.id,
        f.filename,
        f.purpose,
        f.bytes,
        f.created_at,
        f.expires_at,
        sa.cast(sa.null(), sa.String).label("batch_id"),
        sa.cast(sa.null(), sa.String).label("kind"),
    ).where(_owned(f.key_id, scope), _live(now))
    sizes = gateway_output_sizes.c
    b = batches.c
    unsucceeded = b.errored + b.expired + b.cancelled
    parts = []
    for kind, prefix in generated.items():
        parts.append(
            sa.select(
                (sa.literal(prefix) + b.id).label("id"),
                (b.id + sa.literal(f"_{kind}.jsonl")).label("filename"),
                sa.literal("batch_output").label("purpose"),
                sizes.bytes,
                sa.func.coalesce(b.finished_at, b.created_at).label("created_at"),
                sa.cast(sa.null(), sa.Float).label("expires_at"),
                b.id.label("batch_id"),
                sa.literal(kind).label("kind"),
            )
            .select_from(
                (_ANY_BATCH if scope is None else _KEY_BATCH).outerjoin(
                    gateway_output_sizes,
                    sa.and_(sizes.batch_id == b.id, sizes.kind == kind),
                )
            )
            .where(
                _owned(_GB.key_id, scope),
                b.status.in_(_TERMINAL),
                (b.succeeded if kind == "output" else unsucceeded) > 0,
            )
        )
    return sa.union_all(uploads, *parts)


class GatewayStore(Store):
    """The gateway's persistent state (keys, files, ownership, usage), beside the engine's
    own on the same database."""

    # -- keys ------------------------------------------------------------------------

    async def add_key(self, row: Row) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(gateway_keys.insert(), row)

    async def key_by_hash(self, key_hash: str) -> Row | None:
        return await self.read(lambda conn: key_by_hash(conn, key_hash))

    async def get_key(self, key_id: str) -> Row | None:
        return await self._one(sa.select(gateway_keys).where(gateway_keys.c.id == key_id))

    async def list_keys(self) -> list[Row]:
        return await self._all(
            sa.select(gateway_keys).order_by(gateway_keys.c.created_at, gateway_keys.c.id)
        )

    async def revoke_key(self, key_id: str, now: float) -> bool:
        """Revoke a key; False when there is no such key. Revoking twice is fine."""
        async with self.engine.begin() as conn:
            found = await conn.execute(
                gateway_keys.update()
                .where(gateway_keys.c.id == key_id)
                .values(revoked_at=sa.func.coalesce(gateway_keys.c.revoked_at, now))
            )
            return bool(found.rowcount)

    async def spending(self, key_id: str) -> tuple[float, float]:
        """(actual cost so far, cost still reserved by unfinished batches) of a key."""
        async with self.engine.connect() as conn:
            return await self._spending(conn, key_id, time.time())

    async def _spending(
        self, conn: AsyncConnection, key_id: str, now: float
    ) -> tuple[float, float]:
        spent = (
            await conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(gateway_usage.c.cost), 0.0)).where(
                    gateway_usage.c.key_id == key_id
                )
            )
        ).scalar_one()
        actual = (
            sa.select(gateway_usage.c.batch_id, sa.func.sum(gateway_usage.c.cost).label("actual"))
            .where(gateway_usage.c.key_id == key_id)
            .group_by(gateway_usage.c.batch_id)
            .subquery()
        )
        open_batches = await conn.execute(
            sa.select(gateway_batches.c.estimated_cost, actual.c.actual)
            .outerjoin(batches, batches.c.id == gateway_batches.c.batch_id)
            .outerjoin(actual, actual.c.batch_id == gateway_batches.c.batch_id)
            .where(
                gateway_batches.c.key_id == key_id,
                sa.or_(
                    batches.c.status.not_in(_TERMINAL),
                    sa.and_(
                        batches.c.id.is_(None),
                        gateway_batches.c.created_at > now - _ORPHAN_RESERVATION_SECONDS,
                    ),
                ),
            )
        )
        # While a batch runs, its actual cost replaces its estimate request by request.
        reserved = sum(max(est - float(act or 0.0), 0.0) for est, act in open_batches)
        return float(spent), reserved

    # -- batches ---------------------------------------------------------------------

    async def reserve_batch(
        self,
        row: Row,
        max_budget: float | None,
        *,
        batch: Row | None = None,
        idempotency: Idempotency | None = None,
    ) -> str | None:
        """Record a batch's owner and reserve its estimated cost, refusing it (raising
        `BudgetExceededError`) when the key's budget cannot cover it. Atomic per key.

        `batch` is the engine's row of the batch about to be imported, written in the same
        transaction, so the batch never exists without its owner or the other way round.
        With `idempotency`, a create that already used the key wins: nothing is written and
        its batch id is returned (`IdempotencyConflictError` if its body differed). The
        key's primary key decides between concurrent creates, not a read before the write."""
        try:
            async with self.engine.begin() as conn:
                if idempotency is not None:
                    await self._use_idempotency_key(conn, idempotency, row)
                key_id = row["key_id"]
                if key_id is not None and max_budget is not None:
                    # Serialise creates of one key so two cannot both take the last dollar
                    # (SQLite's BEGIN IMMEDIATE already serialises every writer).
                    await conn.execute(
                        sa.select(gateway_keys.c.id)
                        .where(gateway_keys.c.id == key_id)
                        .with_for_update()
                    )
                    spent, reserved = await self._spending(conn, key_id, time.time())
                    committed = spent + reserved
                    if committed + row["estimated_cost"] > max_budget + 1e-12:
                        raise BudgetExceededError(
                            max_budget=max_budget,
                            committed=committed,
                            estimate=row["estimated_cost"],
                        )
                await conn.execute(gateway_batches.insert(), row)
                if batch is not None:
                    await self.insert_import(conn, batch)
        except sa.exc.IntegrityError:
            earlier = None if idempotency is None else await self.idempotent_batch(idempotency)
            if earlier is None:
                raise
            return earlier
        return None

    @staticmethod
    async def _use_idempotency_key(conn: AsyncConnection, idem: Idempotency, row: Row) -> None:
        """Record the key for this create (an IntegrityError when a create has it already);
        a use older than 24 hours is forgotten first."""
        mine = sa.and_(
            gateway_idempotency.c.caller == idem.caller,
            gateway_idempotency.c.idempotency_key == idem.key,
        )
        await conn.execute(
            gateway_idempotency.delete().where(
                mine, gateway_idempotency.c.created_at < row["created_at"] - IDEMPOTENCY_SECONDS
            )
        )
        await conn.execute(
            gateway_idempotency.insert(),
            {
                "caller": idem.caller,
                "idempotency_key": idem.key,
                "request_hash": idem.request_hash,
                "batch_id": row["batch_id"],
                "created_at": row["created_at"],
            },
        )

    async def idempotent_batch(self, idem: Idempotency) -> str | None:
        """The batch an earlier create with this key made in the last 24 hours, if any;
        `IdempotencyConflictError` when that create's body was another."""
        found = await self._one(
            sa.select(gateway_idempotency).where(
                gateway_idempotency.c.caller == idem.caller,
                gateway_idempotency.c.idempotency_key == idem.key,
                gateway_idempotency.c.created_at >= time.time() - IDEMPOTENCY_SECONDS,
            )
        )
        if found is None:
            return None
        if found["request_hash"] != idem.request_hash:
            raise IdempotencyConflictError(idem.key)
        return str(found["batch_id"])

    async def release_orphan_reservations(self, created_before: float) -> int:
        """Stop counting the reservations made before `created_before` whose batch does
        not exist (their create died between the reservation and the import); returns
        how many. The rows stay, only their estimate goes: should a create still be
        running after all, its batch keeps its owner and its usage is recorded, and the
        worst that happens is that its estimate was not held against the budget."""
        orphan = sa.and_(
            gateway_batches.c.created_at < created_before,
            gateway_batches.c.estimated_cost != 0.0,
            ~sa.exists().where(batches.c.id == gateway_batches.c.batch_id),
        )
        async with self.engine.begin() as conn:
            released = await conn.execute(
                gateway_batches.update().where(orphan).values(estimated_cost=0.0)
            )
            return int(released.rowcount)

    async def drop_reservation(self, batch_id: str) -> None:
        """Forget a batch that was refused after its reservation (and its key's use)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                gateway_batches.delete().where(gateway_batches.c.batch_id == batch_id)
            )
            await conn.execute(
                gateway_idempotency.delete().where(gateway_idempotency.c.batch_id == batch_id)
            )

    async def owned_batch(self, batch_id: str, scope: Scope) -> Row | None:
        """The gateway row of a batch the scope may see (None: absent or not theirs)."""
        return await self.read(lambda conn: _one_owned(conn, batch_id, scope))

    async def list_owned_batches(self, scope: Scope, *, after: str | None, limit: int) -> list[Row]:
        """Newest first; `after` is the last id of the previous page (OpenAI's cursor). The
        master key's list has every batch, those made through the CLI and Python API too."""
        created = _OWNER_COLUMNS[-1].element
        stmt = (
            sa.select(*_OWNER_COLUMNS)
            .select_from(_ANY_BATCH if scope is None else _KEY_BATCH)
            .where(_owned(_GB.key_id, scope))
            .order_by(created.desc(), batches.c.id.desc())
            .limit(limit)
        )
        if after is not None:
            cursor = await self.owned_batch(after, scope)
            if cursor is None:
                return []
            stmt = stmt.where(
                sa.tuple_(created, batches.c.id)
                < sa.tuple_(sa.literal(cursor["created_at"]), sa.literal(after))
            )
        return await self._all(stmt)

    async def results_page(
        self, batch_id: str, *, after: str | None, limit: int
    ) -> list[Row] | None:
        """Up to `limit` results in input order after the request `after` (a custom_id);
        None when `after` names no request of the batch."""
        start = -1
        if after is not None:
            seq = await self.seq_of(batch_id, after)
            if seq is None:
                return None
            start = seq
        return await self.results_after(batch_id, start, limit)

    # -- files -----------------------------------------------------------------------

    async def add_file(self, row: Row) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(gateway_files.insert(), row)

    async def get_file(self, file_id: str, scope: Scope, *, now: float | None = None) -> Row | None:
        """An uploaded file the scope may see, unless it has expired."""
        return await self._one(
            sa.select(gateway_files).where(
                gateway_files.c.id == file_id,
                _owned(gateway_files.c.key_id, scope),
                _live(now if now is not None else time.time()),
            )
        )

    async def list_files(
        self,
        scope: Scope,
        *,
        after: str | None,
        limit: int,
        descending: bool,
        purpose: str | None,
        generated: Mapping[str, str],
        now: float,
    ) -> list[Row]:
        """Uploaded files that have not expired, and the output and error files of ended
        batches (ids: the `generated` prefix of their kind + the batch id; `bytes` NULL
        until counted), by creation time. The cursor `after` is the previous page's last id."""
        files = _all_files(scope, generated, now).subquery()
        order: Sequence[Any] = (files.c.created_at, files.c.id)
        stmt = sa.select(files)
        if purpose is not None:
            stmt = stmt.where(files.c.purpose == purpose)
        if after is not None:
            mark_at = await self._one(sa.select(files.c.created_at).where(files.c.id == after))
            if mark_at is None:
                return []
            position = sa.tuple_(*order)
            mark = sa.tuple_(sa.literal(mark_at["created_at"]), sa.literal(after))
            stmt = stmt.where(position < mark if descending else position > mark)
        keys = [c.desc() for c in order] if descending else list(order)
        return await self._all(stmt.order_by(*keys).limit(limit))

    async def expired_files(self, now: float, *, limit: int = 1000) -> list[str]:
        """Delete up to `limit` expired uploads' rows; their ids (for their bytes on disk)."""
        async with self.engine.begin() as conn:
            ids = [
                r[0]
                for r in await conn.execute(
                    sa.select(gateway_files.c.id)
                    .where(gateway_files.c.expires_at <= now)
                    .order_by(gateway_files.c.expires_at)
                    .limit(limit)
                )
            ]
            if ids:
                await conn.execute(gateway_files.delete().where(gateway_files.c.id.in_(ids)))
            return ids

    async def delete_file(self, file_id: str, scope: Scope) -> bool:
        async with self.engine.begin() as conn:
            gone = await conn.execute(
                gateway_files.delete().where(
                    gateway_files.c.id == file_id, _owned(gateway_files.c.key_id, scope)
                )
            )
            return bool(gone.rowcount)

    async def output_size(self, batch_id: str, kind: str) -> int | None:
        """The counted size of a finished batch's generated file; None until counted."""
        t = gateway_output_sizes.c
        row = await self._one(sa.select(t.bytes).where(t.batch_id == batch_id, t.kind == kind))
        return None if row is None else int(row["bytes"])

    async def save_output_size(self, batch_id: str, kind: str, size: int) -> None:
        """Keep a generated file's size; counting it twice (two readers at once) is fine."""
        async with self.engine.begin() as conn:
            await conn.execute(
                insert_ignore(conn.dialect.name, gateway_output_sizes),
                {"batch_id": batch_id, "kind": kind, "bytes": size},
            )

    # -- usage -----------------------------------------------------------------------

    async def usage_summary(self, scope: Scope) -> list[Row]:
        """Requests, tokens and cost per (key, provider, model)."""
        u = gateway_usage.c
        return await self._all(
            sa.select(
                u.key_id,
                gateway_keys.c.name.label("key_name"),
                u.provider,
                u.model,
                sa.func.count().label("requests"),
                sa.func.sum(u.input_tokens).label("input_tokens"),
                sa.func.sum(u.output_tokens).label("output_tokens"),
                sa.func.sum(u.cached_tokens).label("cached_tokens"),
                sa.func.sum(u.reasoning_tokens).label("reasoning_tokens"),
                sa.func.sum(u.cost).label("cost"),
            )
            .outerjoin(gateway_keys, gateway_keys.c.id == u.key_id)
            .where(_owned(u.key_id, scope))
            .group_by(u.key_id, gateway_keys.c.name, u.provider, u.model)
            .order_by(u.key_id, u.provider, u.model)
        )
