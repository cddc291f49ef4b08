"""A virtual key's webhook endpoint is delivered to only at a public address, resolved at
each attempt: a name re-pointed at a private address after registration (DNS
rebinding) gets nothing, and a public one is connected to at the address checked, with
the name in the Host header. There is no DNS here: the event loop's resolver is replaced
by a table the test sets."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.emulated import chat_lines, open_engine
from tests.support.receiver import Receiver, running_receiver
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine, webhook_hosts
from unibatch.engine.webhook_hosts import check_public, pin_public
from unibatch.errors import InputError
from unibatch.store.webhooks import new_secret

HOST = "hooks.example"


@pytest.fixture
async def names(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Host name -> address, as the resolver answers from now on."""
    table: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in table:
            return await real(host, port, *args, **kwargs)
        address = table[host]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return table


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver(new_secret()) as running:
        yield running


async def _keys_batch(engine: Engine, url: str, receiver: Receiver) -> str:
    await engine.store.add_endpoint(url, key_id="key_a", secret=receiver.secret, now=0)
    hooks, _ = await engine.webhook_targets(None, key_id="key_a")
    return await engine.create_batch(chat_lines(1), webhooks=hooks)


async def test_a_name_re_pointed_inward_after_registration_gets_nothing(
    engine: Engine, receiver: Receiver, names: dict[str, str]
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    url = f"http://{HOST}:{port}/hook"
    names[HOST] = "93.184.216.34"
    await check_public(url)  # what the gateway checks at registration
    names[HOST] = "127.0.0.1"  # then the key holder's DNS points inward
    batch_id = await _keys_batch(engine, url, receiver)
    await engine.wait(batch_id, interval=0.05, timeout=60)
    [row] = await engine.store.list_deliveries(batch_id=batch_id)
    assert row["state"] == "pending"  # tried again later, resolved again then
    assert "private or reserved address (127.0.0.1)" in row["last_error"]
    assert receiver.count() == 0


async def test_a_public_name_is_sent_to_the_address_checked(
    engine: Engine, receiver: Receiver, names: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The receiver listens on loopback: count that address as public here, so the
    # delivery can only arrive through the address the check resolved (the name itself
    # resolves nowhere on this machine).
    private = webhook_hosts._private
    monkeypatch.setattr(webhook_hosts, "_private", lambda a: a != "127.0.0.1" and private(a))
    port = receiver.url.split(":")[2].split("/")[0]
    names[HOST] = "127.0.0.1"
    batch_id = await _keys_batch(engine, f"http://{HOST}:{port}/hook", receiver)
    await engine.wait(batch_id, interval=0.05, timeout=60)
    assert receiver.count() == 1
    got = receiver.received[0]
    assert got.error is None, got.error
    assert got.headers["host"] == f"{HOST}:{port}"


async def test_private_receivers_when_the_deployment_allows_them(
    database_url: str,
    emulator: RunningEmulator,
    fast_settings: Settings,
    receiver: Receiver,
) -> None:
    allowing = fast_settings.model_copy(update={"webhook_private_hosts": True})
    engine = await open_engine(database_url, emulator, allowing)
    try:
        batch_id = await _keys_batch(engine, receiver.url, receiver)
        await engine.wait(batch_id, interval=0.05, timeout=60)
        assert receiver.count() == 1 and receiver.received[0].error is None
    finally:
        await engine.aclose()


async def test_pinning_keeps_the_name_for_tls_and_the_host_header(
    names: dict[str, str],
) -> None:
    names[HOST] = "2606:4700::1111"
    url, headers, extensions = await pin_public(f"https://{HOST}:8443/hook?x=1")
    assert str(url) == "https://[2606:4700::1111]:8443/hook?x=1"
    assert headers == {"Host": f"{HOST}:8443"}
    assert extensions == {"sni_hostname": HOST}
    names[HOST] = "93.184.216.34"
    url, headers, extensions = await pin_public(f"http://{HOST}/hook")
    assert (str(url), headers, extensions) == ("http://93.184.216.34/hook", {"Host": HOST}, {})
    names[HOST] = "169.254.169.254"  # a cloud metadata endpoint
    with pytest.raises(InputError, match=r"private or reserved address \(169\.254\.169\.254\)"):
        await pin_public(f"http://{HOST}/latest/meta-data")
