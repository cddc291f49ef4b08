"""The dashboard's pages over HTTP (in-process): login, what each key sees, the request
list's search and paging, the keys page. The browser tests (`tests/ui`) add the script."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from tests.gateway.conftest import MASTER, auth, new_key
from tests.support.emulated import chat_lines
from unibatch.engine import Engine
from unibatch.gateway import GatewaySettings, create_app


@asynccontextmanager
async def browser(
    engine: Engine, settings: GatewaySettings, key: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A client with its own cookie jar, logged in to the dashboard with `key`."""
    app = create_app(engine, gateway_settings=settings, worker=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gw"
    ) as http:
        logged = await http.post("/ui/login", data={"key": key})
        assert logged.status_code == 303, logged.text
        assert logged.headers["location"] == "/ui"
        cookie = logged.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
        yield http


async def create(client: httpx.AsyncClient, key: str, lines: list[dict], **extra: object) -> str:
    requests = [{"custom_id": line["custom_id"], "body": line["body"]} for line in lines]
    spec = {"requests": requests, **extra}
    made = await client.post("/v1/batches", json=spec, headers=auth(key))
    assert made.status_code == 200, made.text
    return str(made.json()["id"])


async def test_pages_need_a_key_and_a_wrong_key_is_refused(client: httpx.AsyncClient) -> None:
    for path in ("/ui", "/ui/usage", "/ui/keys", "/ui/batches/ubb_x"):
        page = await client.get(path)
        assert (page.status_code, page.headers["location"]) == (303, "/ui/login"), path
    assert (await client.get("/ui/api/progress?ids=x")).status_code == 401
    wrong = await client.post("/ui/login", data={"key": "not-a-key"})
    assert wrong.status_code == 200 and "not valid" in wrong.text
    assert "set-cookie" not in wrong.headers


async def test_a_key_sees_only_its_own_batches_and_the_master_sees_all(
    client: httpx.AsyncClient, engine: Engine, gw_settings: GatewaySettings
) -> None:
    alice = await new_key(client, "alice", max_budget=100)
    bob = await new_key(client, "bob")
    mine = await create(client, alice["key"], chat_lines(3, prefix="a"))
    theirs = await create(client, bob["key"], chat_lines(2, prefix="b"))
    # A batch made by the Python API (no key): the master's dashboard shows it too.
    local = await engine.create_batch(chat_lines(1, prefix="c"))
    for batch_id in (mine, theirs, local):
        await engine.wait(batch_id, interval=0.02, timeout=60)

    async with browser(engine, gw_settings, alice["key"]) as http:
        listing = (await http.get("/ui")).text
        assert mine in listing and theirs not in listing and local not in listing
        page = await http.get(f"/ui/batches/{theirs}")
        assert "No batch" in page.text and "b-00000" not in page.text
        polled = (await http.get(f"/ui/api/progress?ids={mine},{theirs},{local}")).json()
        assert set(polled) == {mine}
        assert polled[mine]["status"] == "completed" and polled[mine]["finished"] == 3
        assert (await http.get("/ui/keys")).status_code == 403
        usage = (await http.get("/ui/usage")).text
        assert "openai/gpt-4o-mini: 3" in usage

    async with browser(engine, gw_settings, MASTER) as http:
        listing = (await http.get("/ui")).text
        assert all(b in listing for b in (mine, theirs, local))
        keys = (await http.get("/ui/keys")).text
        assert "alice" in keys and "bob" in keys and "$100.0000" in keys
        assert "openai/gpt-4o-mini: 6" in (await http.get("/ui/usage")).text
        logged_out = await http.post("/ui/logout")
        assert logged_out.headers["location"] == "/ui/login"
        assert (await http.get("/ui")).status_code == 303


async def test_request_list_pages_and_searches_by_custom_id_with_results_beside(
    client: httpx.AsyncClient, engine: Engine, gw_settings: GatewaySettings
) -> None:
    lines = chat_lines(120, prefix="req")
    lines[7]["custom_id"] = "special-7"
    # Requests the emulator fails, each as the provider would: two permanent, one not.
    for i, status in ((3, 400), (4, 400), (5, 429)):
        lines[i]["body"]["messages"][0]["content"] = f"emulate-error:{status}"
    batch_id = await create(client, MASTER, lines, max_attempts=1)
    await engine.wait(batch_id, interval=0.02, timeout=60)
    async with browser(engine, gw_settings, MASTER) as http:
        first = (await http.get(f"/ui/batches/{batch_id}")).text
        assert "req-00000" in first and "req-00049" in first and "req-00050" not in first
        assert "Say something about 0." in first  # the request
        assert "chat.completion" in first  # its result beside it
        assert f"/ui/batches/{batch_id}?after=49" in first
        errors = first[first.index('id="errors"') : first.index('id="requests"')]
        rows = errors.split("<tr>")[2:]
        assert len(rows) == 2
        assert "<td>permanent</td><td>2</td>" in rows[0], rows
        assert "<td>retryable</td><td>1</td>" in rows[1], rows
        second = (await http.get(f"/ui/batches/{batch_id}?after=49")).text
        assert "req-00050" in second and "req-00049" not in second
        found = (await http.get(f"/ui/batches/{batch_id}?q=special")).text
        assert "special-7" in found and "req-00000" not in found
        prefix = (await http.get(f"/ui/batches/{batch_id}?q=req-0011")).text
        assert [f"req-0011{i}" in prefix for i in range(10)] == [True] * 10
        assert "req-00100" not in prefix
        none = (await http.get(f"/ui/batches/{batch_id}?q=nothing")).text
        assert "No request whose custom_id starts with" in none


async def test_login_and_logout_posted_from_another_site_are_refused(
    engine: Engine, gw_settings: GatewaySettings
) -> None:
    """Another site's page could post its own key into a visitor's browser (or log the
    visitor out): a browser says where a post comes from, and only our own pages may."""
    app = create_app(engine, gateway_settings=gw_settings, worker=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        for headers in (
            {"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
            {"sec-fetch-site": "same-site"},
            {"origin": "https://evil.example"},
            {"origin": "null"},
        ):
            refused = await http.post("/ui/login", data={"key": MASTER}, headers=headers)
            assert refused.status_code == 403, headers
            assert "set-cookie" not in refused.headers
            assert (await http.post("/ui/logout", headers=headers)).status_code == 403
        for headers in (
            {"sec-fetch-site": "same-origin", "origin": "http://gw"},
            {"sec-fetch-site": "none"},
            {"origin": "http://gw"},
            # Behind a proxy that ends TLS: the browser's scheme, our Host.
            {"origin": "https://gw"},
            {},  # not a browser (curl, a script): nothing another site can drive
        ):
            logged = await http.post("/ui/login", data={"key": MASTER}, headers=headers)
            assert logged.status_code == 303, headers
            assert (await http.post("/ui/logout", headers=headers)).status_code == 303
