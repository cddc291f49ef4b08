"""Keys and isolation: who may see and touch which files and batches."""

from __future__ import annotations

import logging

import httpx
import pytest
import sqlalchemy as sa

from tests.gateway.conftest import MASTER, auth, create_from_file, new_key, upload
from tests.support.emulated import chat_lines
from unibatch.engine import Engine
from unibatch.gateway.tables import gateway_keys


async def test_missing_wrong_and_revoked_keys_get_401(client: httpx.AsyncClient) -> None:
    for headers in ({}, auth("nope"), {"Authorization": "Basic abc"}):
        response = await client.get("/v1/batches", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    key = await new_key(client, "temp")
    assert (await client.get("/v1/batches", headers=auth(key["key"]))).status_code == 200
    revoked = await client.delete(f"/v1/keys/{key['id']}", headers=auth(MASTER))
    assert revoked.json() == {"id": key["id"], "object": "key", "deleted": True}
    response = await client.get("/v1/batches", headers=auth(key["key"]))
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]
    assert (await client.delete("/v1/keys/key_nope", headers=auth(MASTER))).status_code == 404


async def test_retrieving_a_batch_checks_its_key_on_every_read(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    # The read a client polls authenticates in the same trip to the store as the batch:
    # nothing about a key is kept between requests, so a revocation or a changed budget
    # made anywhere (another server on the database, the CLI) counts from the next one.
    key = await new_key(client, "poller")
    created = await client.post(
        "/v1/batches",
        json={"model": "openai/gpt-4o-mini", "requests": chat_lines(1)},
        headers=auth(key["key"]),
    )
    assert created.status_code == 200, created.text
    path = f"/v1/batches/{created.json()['id']}"
    assert (await client.get(path, headers=auth(key["key"]))).json()["id"] in path
    for headers in ({}, auth("nope"), auth(key["key"] + "x")):
        refused = await client.get(path, headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_api_key"
        assert refused.headers["www-authenticate"] == "Bearer"
    async with engine.store.engine.begin() as conn:
        await conn.execute(
            gateway_keys.update().where(gateway_keys.c.id == key["id"]).values(revoked_at=1.0)
        )
    response = await client.get(path, headers=auth(key["key"]))
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]
    assert (await client.get(path, headers=auth(MASTER))).status_code == 200


async def test_only_the_master_key_manages_keys_and_keys_are_stored_hashed(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    key = await new_key(client, "team-a", max_budget=5)
    assert key["key"].startswith("ubk-") and key["max_budget"] == 5
    assert (await client.get("/v1/keys", headers=auth(key["key"]))).status_code == 403
    forbidden = await client.post("/v1/keys", json={"name": "x"}, headers=auth(key["key"]))
    assert forbidden.status_code == 403
    listed = (await client.get("/v1/keys", headers=auth(MASTER))).json()["data"]
    assert [k["id"] for k in listed] == [key["id"]]
    assert "key" not in listed[0] and listed[0]["key_hint"].startswith("ubk-")
    async with engine.store.engine.connect() as conn:
        stored = [tuple(r) for r in await conn.execute(sa.select(gateway_keys))]
    assert key["key"] not in repr(stored)


async def test_other_keys_get_404_and_empty_lists_while_master_sees_all(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    alice = (await new_key(client, "alice"))["key"]
    bob = (await new_key(client, "bob"))["key"]
    file = await upload(client, alice, b'{"custom_id":"x","body":{}}\n')
    batch = (await create_from_file(client, alice, chat_lines(3))).json()
    await engine.wait(batch["id"], interval=0.05, timeout=30)
    done = (await client.get(f"/v1/batches/{batch['id']}", headers=auth(alice))).json()
    out = done["output_file_id"]
    assert out is not None

    for method, path in [
        ("GET", f"/v1/batches/{batch['id']}"),
        ("POST", f"/v1/batches/{batch['id']}/cancel"),
        ("GET", f"/v1/batches/{batch['id']}/results"),
        ("GET", f"/v1/files/{file['id']}"),
        ("GET", f"/v1/files/{file['id']}/content"),
        ("DELETE", f"/v1/files/{file['id']}"),
        ("GET", f"/v1/files/{out}"),
        ("GET", f"/v1/files/{out}/content"),
    ]:
        response = await client.request(method, path, headers=auth(bob))
        assert response.status_code == 404, (method, path, response.text)
        if method != "DELETE":
            assert (await client.request(method, path, headers=auth(alice))).status_code == 200
    # Bob cannot build a batch from Alice's file either.
    stolen = await client.post(
        "/v1/batches",
        json={
            "input_file_id": file["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
        headers=auth(bob),
    )
    assert stolen.status_code == 400
    assert (await client.get("/v1/batches", headers=auth(bob))).json()["data"] == []
    assert (await client.get("/v1/files", headers=auth(bob))).json()["data"] == []
    assert (await client.get("/v1/usage", headers=auth(bob))).json()["data"] == []
    # Alice's batch answers her by cursor; Bob's cursor on it finds nothing.
    assert (await client.get(f"/v1/batches?after={batch['id']}", headers=auth(bob))).json()[
        "data"
    ] == []

    seen = (await client.get("/v1/batches", headers=auth(MASTER))).json()["data"]
    assert [b["id"] for b in seen] == [batch["id"]]
    files = (await client.get("/v1/files", headers=auth(MASTER))).json()["data"]
    # The two uploads, and the output file of Alice's batch.
    assert len(files) == 3 and out in [f["id"] for f in files]
    assert (await client.get(f"/v1/files/{out}/content", headers=auth(MASTER))).status_code == 200
    assert (await client.delete(f"/v1/files/{file['id']}", headers=auth(alice))).status_code == 200


async def test_keys_never_reach_the_logs(
    client: httpx.AsyncClient, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = (await new_key(client, "quiet"))["key"]
    created = await create_from_file(client, key, chat_lines(2))
    await engine.wait(created.json()["id"], interval=0.05, timeout=30)
    await client.get("/v1/batches", headers=auth(key + "x"))
    assert caplog.records
    assert key not in caplog.text and MASTER not in caplog.text
