"""`unibatch keys` and `unibatch serve` as real subprocesses, as operators run them."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import orjson

from tests.gateway.conftest import MASTER, auth
from tests.support.emulated import chat_lines, provider_env
from tests.support.processes import free_port, healthy, run, start, wait_for
from unibatch.emulators.server import RunningEmulator


def test_keys_commands_and_serve_with_its_worker(tmp_path: Path, emulator: RunningEmulator) -> None:
    env = {
        "UNIBATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'gw.db'}",
        "UNIBATCH_MASTER_KEY": MASTER,
        "UNIBATCH_FILES_DIR": str(tmp_path / "files"),
        "UNIBATCH_POLL_SCHEDULE": "0.1",
        "UNIBATCH_WORKER_IDLE": "0.05",
        **provider_env(emulator),
    }
    created = run(["keys", "create", "team-a", "--max-budget", "1", "--json"], env)
    assert created.returncode == 0, created.stderr
    key = orjson.loads(created.stdout)
    listed = orjson.loads(run(["keys", "list", "--json"], env).stdout)
    assert [(k["id"], k["name"], k["max_budget"]) for k in listed] == [(key["id"], "team-a", 1.0)]
    assert "key" not in listed[0]
    assert run(["keys", "revoke", "key_missing"], env).returncode == 4

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(["serve", "--port", str(port)], env, log=tmp_path / "serve.log")
    try:
        wait_for(lambda: healthy(url), 30, "the gateway to listen")
        health = httpx.get(f"{url}/health").json()
        assert (health["status"], health["worker"], health["worker_error"]) == ("ok", True, None)
        assert health["worker_last_loop_seconds"] is not None
        requests = [{"custom_id": x["custom_id"], "body": x["body"]} for x in chat_lines(3)]
        batch = httpx.post(
            f"{url}/v1/batches", json={"requests": requests}, headers=auth(key["key"])
        ).json()

        def finished() -> bool:
            got = httpx.get(f"{url}/v1/batches/{batch['id']}", headers=auth(key["key"]))
            return bool(got.json()["status"] == "completed")

        # Nobody but the server's own worker drives the batch.
        wait_for(finished, 30, "the in-server worker to finish the batch", step=0.1)
        assert run(["keys", "revoke", key["id"]], env).returncode == 0
        gone = httpx.get(f"{url}/v1/batches", headers=auth(key["key"]))
        assert gone.status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=20)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    apart = start(["serve", "--port", str(port), "--no-worker"], env)
    try:
        wait_for(lambda: healthy(url), 30, "the gateway to listen")
        health = httpx.get(f"{url}/health").json()
        assert (health["status"], health["worker"]) == ("ok", False)
    finally:
        apart.terminate()
        assert apart.wait(timeout=20) is not None


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed `sock` (reading what it may have sent first)."""
    try:
        return sock.recv(4096) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_serve_closes_connections_that_never_finish_their_headers(tmp_path: Path) -> None:
    env = {
        "UNIBATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'gw.db'}",
        "UNIBATCH_FILES_DIR": str(tmp_path / "files"),
        "UNIBATCH_HEADER_TIMEOUT": "1",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(["serve", "--port", str(port), "--no-worker"], env, log=tmp_path / "serve.log")
    sockets: list[socket.socket] = []
    try:
        wait_for(lambda: healthy(url), 30, "the gateway to listen")
        for sent in (b"", b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"GE"):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.settimeout(0.2)
            sock.sendall(sent)
            sockets.append(sock)
        # Only that they close matters, not when: the bound is generous.
        for sock in sockets:
            wait_for(lambda s=sock: _closed_by_server(s), 30, "the server to close it")
        # A request sent in time is served as ever.
        assert httpx.get(f"{url}/health").status_code == 200
    finally:
        for sock in sockets:
            sock.close()
        server.terminate()
        server.wait(timeout=20)
