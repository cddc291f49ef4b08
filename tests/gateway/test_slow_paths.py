"""Reads whose cost must not grow with what an attacker or a busy client asks for: a page of
batches costs the same number of queries at 2 or 20 batches, and an output file's size is
rendered once, not on every request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event

from tests.gateway.conftest import MASTER, auth
from tests.support.emulated import chat_lines
from unibatch.engine import Engine

H = auth(MASTER)


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run on the engine's database while the block runs. An export's
    bulk read of results on SQLite runs on a connection of its own, out of SQLAlchemy's
    sight: it is recorded as a statement that reads results."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    store = engine.store
    bulk_read = store.iter_result_rows

    def recorded_bulk_read(*args: Any, **kwargs: Any) -> Any:
        seen.append("bulk read: SELECT ... JOIN results")
        return bulk_read(*args, **kwargs)

    target = store.engine.sync_engine
    event.listen(target, "before_cursor_execute", record)
    store.iter_result_rows = recorded_bulk_read  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        event.remove(target, "before_cursor_execute", record)
        del store.iter_result_rows


async def _inline_batch(client: httpx.AsyncClient, n: int = 2) -> str:
    response = await client.post("/v1/batches", json={"requests": chat_lines(n)}, headers=H)
    assert response.status_code == 200, response.text
    batch_id: str = response.json()["id"]
    return batch_id


async def test_a_page_of_batches_costs_the_same_queries_whatever_its_size(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    ids = [await _inline_batch(client) for _ in range(20)]
    await engine.wait(ids[3], interval=0.05, timeout=30)  # one finished, the rest pending
    await client.post(f"/v1/batches/{ids[5]}/cancel", headers=H)
    counts = {}
    for limit in (2, 20):
        with statements(engine) as seen:
            page = await client.get("/v1/batches", params={"limit": limit}, headers=H)
        assert page.status_code == 200, page.text
        assert len(page.json()["data"]) == limit
        counts[limit] = len(seen)
    assert counts[20] == counts[2], counts
    # The page says what each batch's own page says.
    listed = {b["id"]: b for b in page.json()["data"]}
    assert set(listed) == set(ids)
    for batch_id in ids:
        single = (await client.get(f"/v1/batches/{batch_id}", headers=H)).json()
        assert listed[batch_id] == single
    assert listed[ids[3]]["status"] == "completed"
    assert listed[ids[3]]["request_counts"] == {"total": 2, "completed": 2, "failed": 0}


def _renders(seen: list[str]) -> int:
    """How many of `seen` read results to render an output file."""
    return sum("JOIN results" in statement for statement in seen)


async def test_an_output_file_size_is_exact_and_rendered_once(
    client: httpx.AsyncClient, engine: Engine, emulator: Any
) -> None:
    emulator.config.failure_rate = 0.3
    batch_id = await _inline_batch(client, 40)
    await engine.wait(batch_id, interval=0.05, timeout=30)
    batch = (await client.get(f"/v1/batches/{batch_id}", headers=H)).json()
    assert batch["output_file_id"] and batch["error_file_id"]
    with statements(engine) as first:
        meta = await client.get(f"/v1/files/{batch['output_file_id']}", headers=H)
    with statements(engine) as again:
        assert (await client.get(f"/v1/files/{batch['output_file_id']}", headers=H)).json() == (
            meta.json()
        )
    assert _renders(first) >= 1 and _renders(again) == 0
    content = await client.get(f"/v1/files/{batch['output_file_id']}/content", headers=H)
    assert meta.json()["bytes"] == len(content.content) > 0
    # A download that ran to the end counted the file: its size needs no rendering.
    errors = await client.get(f"/v1/files/{batch['error_file_id']}/content", headers=H)
    with statements(engine) as after_download:
        error_meta = (await client.get(f"/v1/files/{batch['error_file_id']}", headers=H)).json()
    assert _renders(after_download) == 0
    assert error_meta["bytes"] == len(errors.content) > 0
