"""Budgets: what may be a budget, reservations of creates that died, and estimates that
price every provider from a server's very first requests."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.gateway.conftest import MASTER, auth, new_key
from tests.gateway.server import running_gateway
from tests.support.processes import free_port, healthy, run, start, wait_for
from unibatch.config import Settings
from unibatch.engine import Engine
from unibatch.gateway import GatewaySettings, create_app
from unibatch.gateway.convert import estimate_cost
from unibatch.gateway.store import ORPHAN_SWEEP_MARGIN_SECONDS, GatewayStore
from unibatch.pricing import Pricer

H = auth(MASTER)


@pytest.mark.parametrize("budget", [b"1e309", b"-1e309", b"NaN", b"Infinity"])
async def test_a_budget_must_be_a_finite_amount(client: httpx.AsyncClient, budget: bytes) -> None:
    response = await client.post(
        "/v1/keys",
        content=b'{"name": "x", "max_budget": ' + budget + b"}",
        headers={**H, "content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "max_budget" and "max_budget" in error["message"]
    listed = (await client.get("/v1/keys", headers=H)).json()["data"]
    assert listed == []


def test_keys_create_refuses_a_budget_that_is_not_finite(tmp_path: Path) -> None:
    # Wide enough that the error box does not wrap the message.
    env = {"UNIBATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'gw.db'}", "COLUMNS": "200"}
    for budget in ("inf", "1e309", "nan", "-1"):
        refused = run(["keys", "create", "team", "--max-budget", budget], env)
        assert refused.returncode == 2, (budget, refused.stdout, refused.stderr)
        assert "--max-budget" in refused.stderr and "finite" in refused.stderr
    listed = run(["keys", "list", "--json"], env)
    assert orjson.loads(listed.stdout) == []


async def _reserved(client: httpx.AsyncClient, key_id: str) -> float:
    keys = (await client.get("/v1/keys", headers=H)).json()["data"]
    return float(next(k["reserved"] for k in keys if k["id"] == key_id))


async def test_a_restart_releases_the_reservation_of_a_create_that_died(
    client: httpx.AsyncClient, engine: Engine, gw_settings: GatewaySettings, database_url: str
) -> None:
    key = await new_key(client, "capped", max_budget=10)
    store = GatewayStore(engine.store.engine)
    now = time.time()

    async def reserve(batch_id: str, cost: float, created_at: float) -> None:
        # What a create writes before it imports the batch (and what a crash leaves).
        row = {
            "batch_id": batch_id,
            "key_id": key["id"],
            "input_file_id": None,
            "completion_window": "24h",
            "estimated_cost": cost,
            "created_at": created_at,
        }
        await store.reserve_batch(row, 10.0)

    # A create that died a while ago, and one another server is still importing.
    await reserve("ubb_crashed", 4.0, now - ORPHAN_SWEEP_MARGIN_SECONDS - 60)
    await reserve("ubb_importing", 2.0, now - 5)
    requests = [{"custom_id": "a", "body": {"messages": [{"role": "user", "content": "hi"}]}}]
    created = await client.post(
        "/v1/batches",
        json={"model": "openai/gpt-4o-mini", "requests": requests},
        headers=auth(key["key"]),
    )
    assert created.status_code == 200, created.text
    live = await _reserved(client, key["id"]) - 6.0
    assert live > 0
    assert await _reserved(client, key["id"]) == pytest.approx(6.0 + live)

    # A server starting on the database with its own engine, as `unibatch serve` does.
    app = create_app(
        Settings(database_url=database_url), gateway_settings=gw_settings, worker=False
    )
    with running_gateway(app) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            assert await _reserved(http, key["id"]) == pytest.approx(2.0 + live)
    # The batch that exists is still its key's.
    got = await client.get(f"/v1/batches/{created.json()['id']}", headers=auth(key["key"]))
    assert got.status_code == 200


MODELS = (
    "openai/gpt-4o-mini",
    "anthropic/claude-haiku-4-5",
    "gemini/gemini-2.5-flash",
    "xai/grok-4",
    "groq/llama-3.1-8b-instant",
    "mistral/mistral-small-latest",
    "together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
)


def test_a_fresh_server_prices_its_first_creates_for_every_provider(tmp_path: Path) -> None:
    """The estimate looks providers up in the registry; a server whose registry knew only
    the provider first imported priced the others at $0, and budgets did not hold."""
    database = tmp_path / "gw.db"
    env = {
        "UNIBATCH_DATABASE_URL": f"sqlite:///{database}",
        "UNIBATCH_MASTER_KEY": MASTER,
        "UNIBATCH_FILES_DIR": str(tmp_path / "files"),
        # Never called: the server runs no worker, so nothing is sent.
        "OPENAI_API_KEY": "k",
        "ANTHROPIC_API_KEY": "k",
        "GEMINI_API_KEY": "k",
        "XAI_API_KEY": "k",
        "GROQ_API_KEY": "k",
        "MISTRAL_API_KEY": "k",
        "TOGETHER_API_KEY": "k",
    }
    created = run(["keys", "create", "capped", "--max-budget", "100", "--json"], env)
    assert created.returncode == 0, created.stderr
    key = orjson.loads(created.stdout)["key"]
    batches = {
        model: {
            "model": model,
            "requests": [
                {
                    "custom_id": f"r{i}",
                    "body": {
                        "messages": [{"role": "user", "content": f"Say something about {i}."}],
                        "max_tokens": 100,
                    },
                }
                for i in range(3)
            ],
        }
        for model in MODELS
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(["serve", "--port", str(port), "--no-worker"], env, log=tmp_path / "serve.log")
    try:
        wait_for(lambda: healthy(url), 30, "the gateway to listen")

        async def create_all() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, headers=auth(key), timeout=30) as http:
                return await asyncio.gather(
                    *(http.post("/v1/batches", json=body) for body in batches.values())
                )

        answers = asyncio.run(create_all())
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert [a.status_code for a in answers] == [200] * len(MODELS), [a.text for a in answers]
    with sqlite3.connect(database) as db:
        reserved = dict(db.execute("SELECT batch_id, estimated_cost FROM gateway_batches"))
    pricer = Pricer()
    for model, answer in zip(MODELS, answers, strict=True):
        # The gateway writes the top-level model into each body before estimating.
        lines = [
            {"custom_id": r["custom_id"], "body": {**r["body"], "model": model}}
            for r in batches[model]["requests"]
        ]
        expected = estimate_cost(lines, pricer=pricer, default_model=None, default_max_tokens=1024)
        assert expected > 0
        assert reserved[answer.json()["id"]] == pytest.approx(expected), model
