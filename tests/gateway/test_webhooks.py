"""`/v1/webhooks` and `metadata.webhook_url`: a key's endpoints hear of its own batches
only, signed with the secret its registration showed once."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from openai import AsyncOpenAI

from tests.gateway.conftest import MASTER, auth, jsonl, new_key
from tests.support.emulated import chat_lines, open_engine
from tests.support.receiver import Receiver, running_receiver
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine
from unibatch.gateway import GatewaySettings, create_app
from unibatch.store.webhooks import new_secret


@pytest.fixture
def fast_settings(fast_settings: Settings) -> Settings:
    # The receivers of these tests listen on loopback.
    return fast_settings.model_copy(update={"webhook_private_hosts": True})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver(new_secret()) as running:
        yield running


def _sdk(client: httpx.AsyncClient, key: str) -> AsyncOpenAI:
    return AsyncOpenAI(base_url="http://gateway/v1", api_key=key, http_client=client, max_retries=0)


async def _register(client: httpx.AsyncClient, key: str, url: str) -> dict[str, object]:
    created = await client.post("/v1/webhooks", json={"url": url}, headers=auth(key))
    assert created.status_code == 200, created.text
    body: dict[str, object] = created.json()
    return body


async def test_key_endpoint_hears_of_its_batches_only(
    client: httpx.AsyncClient, engine: Engine, receiver: Receiver
) -> None:
    mine = (await new_key(client, "mine"))["key"]
    theirs = (await new_key(client, "theirs"))["key"]
    endpoint = await _register(client, mine, receiver.url)
    assert str(endpoint["secret"]).startswith("whsec_")
    receiver.secret = str(endpoint["secret"])
    # The secret is shown once: the list has none.
    listed = (await client.get("/v1/webhooks", headers=auth(mine))).json()["data"]
    assert [(e["id"], e["secret"]) for e in listed] == [(endpoint["id"], None)]
    assert (await client.get("/v1/webhooks", headers=auth(theirs))).json()["data"] == []

    sdk = _sdk(client, mine)
    uploaded = await sdk.files.create(file=("in.jsonl", jsonl(chat_lines(2))), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"webhook_url": receiver.url},
    )
    other = await _sdk(client, theirs).files.create(
        file=("in.jsonl", jsonl(chat_lines(1))), purpose="batch"
    )
    foreign = await _sdk(client, theirs).batches.create(
        input_file_id=other.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    for batch_id in (batch.id, foreign.id):
        await engine.wait(batch_id, interval=0.02, timeout=60)

    [got] = receiver.received  # one event, though the key's endpoint and the URL coincide
    assert got.error is None, got.error
    assert got.verified is not None
    assert (got.verified["type"], got.verified["data"]["id"]) == ("batch.completed", batch.id)
    unwrapped = AsyncOpenAI(api_key="x", webhook_secret=receiver.secret).webhooks.unwrap(
        got.body.decode(), got.headers
    )
    assert unwrapped.type == "batch.completed"

    # Another key cannot remove it; its owner can.
    gone = await client.delete(f"/v1/webhooks/{endpoint['id']}", headers=auth(theirs))
    assert gone.status_code == 404
    gone = await client.delete(f"/v1/webhooks/{endpoint['id']}", headers=auth(mine))
    assert gone.status_code == 200 and gone.json()["deleted"] is True


async def test_unregistered_webhook_url_is_refused_for_a_key(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    key = (await new_key(client, "k"))["key"]
    created = await client.post(
        "/v1/batches",
        json={
            "model": "openai/gpt-4o-mini",
            "requests": chat_lines(1),
            "metadata": {"webhook_url": receiver.url},
        },
        headers=auth(key),
    )
    assert created.status_code == 400, created.text
    error = created.json()["error"]
    assert error["param"] == "metadata.webhook_url"
    assert "POST /v1/webhooks" in error["message"]


async def test_bad_endpoints_are_refused(client: httpx.AsyncClient) -> None:
    for body, param in (
        ({"url": "ftp://example.com"}, "url"),
        ({"url": "https://example.com", "secret": "whsec_short"}, "secret"),
    ):
        created = await client.post("/v1/webhooks", json=body, headers=auth(MASTER))
        assert created.status_code == 400, created.text
        assert created.json()["error"]["param"] == param


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/hook",
        "http://[::1]:9000/hook",
        "http://[::ffff:192.168.0.1]/hook",
    ],
)
async def test_a_key_cannot_register_a_private_address_by_default(
    database_url: str,
    emulator: RunningEmulator,
    fast_settings: Settings,
    gw_settings: GatewaySettings,
    url: str,
) -> None:
    refusing = fast_settings.model_copy(update={"webhook_private_hosts": False})
    engine = await open_engine(database_url, emulator, refusing)
    try:
        app = create_app(engine, gateway_settings=gw_settings, worker=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            key = (await new_key(client, "k"))["key"]
            refused = await client.post("/v1/webhooks", json={"url": url}, headers=auth(key))
            assert refused.status_code == 400, refused.text
            error = refused.json()["error"]
            assert error["param"] == "url" and "private or reserved address" in error["message"]
            assert (await client.get("/v1/webhooks", headers=auth(key))).json()["data"] == []
            # The operator may point the deployment's own endpoints anywhere.
            kept = await client.post("/v1/webhooks", json={"url": url}, headers=auth(MASTER))
            assert kept.status_code == 200, kept.text
    finally:
        await engine.aclose()
