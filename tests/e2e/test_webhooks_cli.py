"""Webhooks through the CLI as a subprocess: `submit --webhook`, a worker SIGKILLed while
its delivery is in flight, and `unibatch webhooks add|list|test|redeliver|remove`."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.e2e.test_crash_safety import worker_env
from tests.support.database import scalar
from tests.support.emulated import chat_lines
from tests.support.processes import run, start, wait_for
from tests.support.receiver import Receiver, running_receiver
from unibatch.store.tables import webhook_deliveries
from unibatch.store.webhooks import new_secret

pytestmark = pytest.mark.slow


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver(new_secret()) as running:
        yield running


def _requests(tmp_path: Path, n: int = 3) -> Path:
    path = tmp_path / "requests.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in chat_lines(n)))
    return path


def test_worker_killed_mid_delivery_delivers_after_restart(
    database_url: str, emulator: Any, receiver: Receiver, tmp_path: Path
) -> None:
    env = worker_env(database_url, emulator, UNIBATCH_WEBHOOK_SECRET=receiver.secret)
    submitted = run(["submit", str(_requests(tmp_path)), "--webhook", receiver.url, "--json"], env)
    assert submitted.returncode == 0, submitted.stderr
    batch_id = orjson.loads(submitted.stdout)["id"]
    receiver.hold = True
    first = start(["worker"], env, tmp_path / "worker1.log")
    try:
        wait_for(receiver.arrived.is_set, 120, "the delivery to reach the receiver")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    delivered = sa.select(webhook_deliveries.c.state).where(
        webhook_deliveries.c.batch_id == batch_id
    )
    assert scalar(database_url, delivered) == "pending"  # the outcome died with the worker
    receiver.hold = False
    receiver.release.set()

    second = start(["worker"], env, tmp_path / "worker2.log")
    try:
        wait_for(lambda: scalar(database_url, delivered) == "delivered", 120, "the redelivery")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait()
    got = receiver.received
    assert len(got) == 2  # the one cut off, and the one acknowledged
    assert all(r.error is None for r in got), [r.error for r in got]
    assert {r.headers["webhook-id"] for r in got} == {got[0].verified["id"]}  # type: ignore[index]
    assert got[1].verified == got[0].verified
    assert got[1].verified["type"] == "batch.completed"  # type: ignore[index]
    assert got[1].verified["data"]["id"] == batch_id  # type: ignore[index]


def test_webhooks_commands(
    database_url: str, emulator: Any, receiver: Receiver, tmp_path: Path
) -> None:
    env = worker_env(database_url, emulator)
    added = run(["webhooks", "add", receiver.url, "--secret", receiver.secret, "--json"], env)
    assert added.returncode == 0, added.stderr
    endpoint = orjson.loads(added.stdout)
    assert endpoint["secret"] == receiver.secret

    tested = run(["webhooks", "test", endpoint["id"], "--json"], env)
    assert tested.returncode == 0, tested.stderr + tested.stdout
    assert orjson.loads(tested.stdout)["state"] == "delivered"
    assert receiver.received[-1].verified["type"] == "webhook.test"  # type: ignore[index]

    # The endpoint hears of every batch made without a key, with or without --webhook.
    done = run(["submit", str(_requests(tmp_path)), "--wait", "--json"], env)
    assert done.returncode == 0, done.stderr
    batch_id = orjson.loads(done.stdout)["id"]
    assert receiver.received[-1].verified["data"]["id"] == batch_id  # type: ignore[index]

    listed = run(["webhooks", "list", "--batch", batch_id, "--json"], env)
    assert listed.returncode == 0, listed.stderr
    shown = orjson.loads(listed.stdout)
    assert [e["id"] for e in shown["endpoints"]] == [endpoint["id"]]
    assert "secret" not in shown["endpoints"][0]
    [delivery] = shown["deliveries"]
    assert (delivery["type"], delivery["state"]) == ("batch.completed", "delivered")

    again = run(["webhooks", "redeliver", delivery["event_id"]], env)
    assert again.returncode == 0, again.stderr
    count = receiver.count()
    waited = run(["wait", batch_id, "--json"], env)
    assert waited.returncode == 0, waited.stderr
    assert receiver.count() == count + 1
    assert receiver.received[-1].headers["webhook-id"] == delivery["event_id"]

    removed = run(["webhooks", "remove", endpoint["id"]], env)
    assert removed.returncode == 0, removed.stderr
    missing = run(["webhooks", "test", endpoint["id"]], env)
    assert missing.returncode == 4


def test_submit_registers_a_new_url_and_shows_its_secret_once(
    database_url: str, emulator: Any, receiver: Receiver, tmp_path: Path
) -> None:
    env = worker_env(database_url, emulator)
    done = run(["submit", str(_requests(tmp_path)), "--webhook", receiver.url], env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    secret = next(word for word in lines if word.startswith("whsec_"))
    receiver.secret = secret
    batch_id = lines[-1]
    waited = run(["wait", batch_id, "--json"], env)
    assert waited.returncode == 0, waited.stderr
    [got] = receiver.received
    assert got.error is None
    # The second submit to the same URL reuses the endpoint: no new secret.
    again = run(["submit", str(_requests(tmp_path)), "--webhook", receiver.url], env)
    assert "whsec_" not in again.stdout + again.stderr
