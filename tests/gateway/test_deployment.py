"""Several gateway servers and separate workers share one database."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.gateway.conftest import MASTER, auth
from tests.support.emulated import chat_lines, open_engine, provider_env
from tests.support.waiting import until
from unibatch.client import AsyncClient
from unibatch.config import Settings
from unibatch.emulators.server import RunningEmulator
from unibatch.gateway import GatewaySettings, create_app


async def test_two_servers_without_workers_and_one_worker_share_a_database(
    database_url: str,
    emulator: RunningEmulator,
    gw_settings: GatewaySettings,
    fast_settings: Settings,
) -> None:
    engines = [await open_engine(database_url, emulator, fast_settings) for _ in range(2)]
    front_a, front_b = engines
    # Built as `unibatch worker` builds its engine: through a client, gateway hooks included.
    worker_client = AsyncClient(database_url, settings=fast_settings, env=provider_env(emulator))
    worker = await worker_client.engine()
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(
                app=create_app(eng, gateway_settings=gw_settings, worker=False)
            ),
            base_url="http://gateway",
        )
        for eng in (front_a, front_b)
    ]
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run_worker(stop))
    try:
        a, b = clients
        key = (await a.post("/v1/keys", json={"name": "k"}, headers=auth(MASTER))).json()["key"]
        requests = [{"custom_id": x["custom_id"], "body": x["body"]} for x in chat_lines(4)]
        created = await a.post("/v1/batches", json={"requests": requests}, headers=auth(key))
        batch_id = created.json()["id"]
        got: dict[str, Any] = {}

        async def completed() -> bool:
            nonlocal got
            got = (await b.get(f"/v1/batches/{batch_id}", headers=auth(key))).json()
            return bool(got["status"] == "completed")

        await until(completed, "the batch to complete through the other front end", 15, 0.05)
        assert got["status"] == "completed" and got["request_counts"]["completed"] == 4
        usage = (await b.get("/v1/usage", headers=auth(key))).json()["data"]
        assert [row["requests"] for row in usage] == [4]
    finally:
        stop.set()
        await running
        for client in clients:
            await client.aclose()
        for eng in engines:
            await eng.aclose()
        await worker_client.aclose()
