"""Webhooks: signed Standard Webhooks events from the outbox, checked by a receiver that
verifies them with the `standardwebhooks` package, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import openai
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clock import ShiftedClock
from tests.support.emulated import chat_lines, open_engine
from tests.support.receiver import Receiver, running_receiver
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine
from unibatch.errors import InputError
from unibatch.metrics.collector import render
from unibatch.store.tables import webhook_deliveries, webhook_events
from unibatch.store.webhooks import new_secret


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver(new_secret()) as running:
        yield running


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
async def hooked(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings, clock: ShiftedClock
) -> AsyncIterator[Engine]:
    """An engine on the test clock, whose webhook retries come after 5 s, then 60 s."""
    settings = fast_settings.model_copy(
        update={"webhook_schedule": (5.0, 60.0), "webhook_retry_window": 150.0}
    )
    eng = await open_engine(database_url, emulator, settings)
    eng.ctx.clock = clock
    yield eng
    await eng.aclose()


async def _batch_with_hook(engine: Engine, receiver: Receiver, **options: object) -> str:
    await engine.store.add_endpoint(receiver.url, key_id=None, secret=receiver.secret, now=0)
    hooks, created = await engine.webhook_targets(receiver.url)
    assert created is None  # registered above
    lines = options.pop("lines", None) or chat_lines(3)
    return await engine.create_batch(lines, webhooks=hooks, **options)  # type: ignore[arg-type]


async def test_completed_batch_sends_one_signed_event(hooked: Engine, receiver: Receiver) -> None:
    batch_id = await _batch_with_hook(hooked, receiver)
    await hooked.wait(batch_id, interval=0.05, timeout=60)

    assert receiver.count() == 1
    got = receiver.received[0]
    assert got.error is None, got.error
    event = got.verified
    assert event is not None
    assert event["type"] == "batch.completed"
    assert event["object"] == "event"
    assert event["data"] == {"id": batch_id}
    assert got.headers["webhook-id"] == event["id"]
    assert event["id"].startswith("evt_")
    # OpenAI's SDK reads our events as its own batch webhooks.
    client = openai.OpenAI(api_key="unused", webhook_secret=receiver.secret)
    unwrapped = client.webhooks.unwrap(got.body.decode(), got.headers)
    assert unwrapped.type == "batch.completed"
    assert unwrapped.data.id == batch_id
    # Delivered, and not sent again by later rounds.
    await hooked.run_once()
    assert receiver.count() == 1
    [row] = await hooked.store.list_deliveries(batch_id=batch_id)
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 1, 200)


async def test_a_wrong_secret_fails_verification(hooked: Engine, receiver: Receiver) -> None:
    """The receiver's check is real: an endpoint signed with another secret is refused."""
    await hooked.store.add_endpoint(receiver.url, key_id=None, secret=new_secret(), now=0)
    hooks, _ = await hooked.webhook_targets(None)
    batch_id = await hooked.create_batch(chat_lines(1), webhooks=hooks)
    await hooked.wait(batch_id, interval=0.05, timeout=60)
    assert receiver.received[0].verified is None
    assert "signature" in (receiver.received[0].error or "").lower()


async def test_receiver_answering_500_gets_the_event_later(
    hooked: Engine, receiver: Receiver, clock: ShiftedClock
) -> None:
    receiver.statuses = [500, 503]
    batch_id = await _batch_with_hook(hooked, receiver)
    await hooked.wait(batch_id, interval=0.05, timeout=60)
    assert [r.status for r in receiver.received] == [500]
    [row] = await hooked.store.list_deliveries(batch_id=batch_id)
    assert (row["state"], row["attempts"], row["last_error"]) == ("pending", 1, "HTTP 500")
    assert row["next_run_at"] == pytest.approx(clock() + 5.0, abs=1.0)

    await hooked.run_once()  # not due yet: nothing sent
    assert receiver.count() == 1
    clock.advance(5.0)
    await hooked.run_once()
    assert [r.status for r in receiver.received] == [500, 503]
    clock.advance(30.0)
    await hooked.run_once()  # the second wait is 60 s
    assert receiver.count() == 2
    clock.advance(30.0)
    await hooked.run_once()
    assert [r.status for r in receiver.received] == [500, 503, 200]
    # The same event each time: the receiver deduplicates by webhook-id.
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    assert all(r.error is None for r in receiver.received)
    [row] = await hooked.store.list_deliveries(batch_id=batch_id)
    assert (row["state"], row["attempts"]) == ("delivered", 3)


async def test_metrics_count_deliveries_by_type_and_state(
    hooked: Engine, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    first = await _batch_with_hook(hooked, receiver)
    await hooked.wait(first, interval=0.05, timeout=60)  # answered 500: pending
    hooks, _ = await hooked.webhook_targets(None)
    second = await hooked.create_batch(chat_lines(1), webhooks=hooks)
    await hooked.wait(second, interval=0.05, timeout=60)  # delivered
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families((await render(hooked.store)).decode())
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples.get((name, frozenset(labels.items())), 0.0)

    completed = {"type": "batch.completed"}
    assert value("unibatch_webhook_deliveries", **completed, state="pending") == 1
    assert value("unibatch_webhook_deliveries", **completed, state="delivered") == 1
    assert value("unibatch_webhook_attempts", **completed, state="pending") == 1
    # The pending one is due again only after its backoff.
    assert value("unibatch_due_steps", step="webhook") == 0


async def test_delivery_gives_up_after_the_retry_window_and_can_be_redelivered(
    hooked: Engine, receiver: Receiver, clock: ShiftedClock
) -> None:
    """Waits of 5 + 60 + 60 s fit the 150 s window; a fourth wait would not."""
    receiver.statuses = [500] * 4
    batch_id = await _batch_with_hook(hooked, receiver)
    await hooked.wait(batch_id, interval=0.05, timeout=60)
    for wait in (5.0, 60.0, 60.0):
        clock.advance(wait)
        await hooked.run_once()
    assert receiver.count() == 4
    [row] = await hooked.store.list_deliveries(batch_id=batch_id)
    assert (row["state"], row["attempts"], row["next_run_at"]) == ("failed", 4, None)
    clock.advance(3600.0)
    await hooked.run_once()
    assert receiver.count() == 4

    assert await hooked.store.redeliver(row["event_id"], now=clock()) == 1
    await hooked.run_once()
    assert [r.status for r in receiver.received][-1] == 200
    [row] = await hooked.store.list_deliveries(batch_id=batch_id)
    assert row["state"] == "delivered"
    # An endpoint removed is not sent to again, even when asked.
    assert await hooked.store.revoke_endpoint(row["endpoint_id"], None, now=clock())
    assert await hooked.store.redeliver(row["event_id"], now=clock()) == 0


async def test_unreachable_receiver_is_retried(
    hooked: Engine, receiver: Receiver, clock: ShiftedClock
) -> None:
    """A refused connection is an error like a 500: retried on the schedule."""
    await hooked.store.add_endpoint("http://127.0.0.1:9/nothing", key_id=None, now=0)
    hooks, _ = await hooked.webhook_targets(None)
    batch_id = await hooked.create_batch(chat_lines(1), webhooks=hooks)
    await hooked.wait(batch_id, interval=0.05, timeout=60)
    [row] = await hooked.store.list_deliveries(batch_id=batch_id)
    assert row["state"] == "pending"
    assert "ConnectError" in row["last_error"]


async def test_cancelled_and_retrying_events(hooked: Engine, receiver: Receiver) -> None:
    lines = chat_lines(4)
    lines[0]["body"]["messages"][0]["content"] = "emulate-error:500"
    batch_id = await _batch_with_hook(hooked, receiver, lines=lines, max_attempts=2)
    await hooked.wait(batch_id, interval=0.05, timeout=60)
    types = [r.verified["type"] for r in receiver.received if r.verified]
    # A retry round was planned, then the batch ended.
    assert types == ["batch.retrying", "batch.completed"]

    hooks, _ = await hooked.webhook_targets(None)
    other = await hooked.create_batch(chat_lines(2), webhooks=hooks)
    await hooked.cancel(other)
    await hooked.wait(other, interval=0.05, timeout=60)
    last = receiver.received[-1].verified
    assert last is not None
    assert (last["type"], last["data"]["id"]) == ("batch.cancelled", other)


async def test_failed_import_sends_batch_failed(hooked: Engine, receiver: Receiver) -> None:
    lines = chat_lines(2)
    lines[1]["body"] = "not an object"
    await hooked.store.add_endpoint(receiver.url, key_id=None, secret=receiver.secret, now=0)
    hooks, _ = await hooked.webhook_targets(None)
    with pytest.raises(InputError):
        await hooked.create_batch(lines, webhooks=hooks, keep_failed=True)
    await hooked.run_once()
    [got] = receiver.received
    assert got.verified is not None
    assert got.verified["type"] == "batch.failed"


async def test_unregistered_url_needs_a_secret(hooked: Engine) -> None:
    with pytest.raises(InputError, match="not a registered endpoint"):
        await hooked.webhook_targets("https://example.com/hook")
    with pytest.raises(InputError, match="http"):
        await hooked.webhook_targets("ftp://example.com/hook", new_secret=new_secret())


async def test_a_batch_without_webhooks_writes_no_event(hooked: Engine, receiver: Receiver) -> None:
    batch_id = await hooked.create_batch(chat_lines(1))
    await hooked.wait(batch_id, interval=0.05, timeout=60)
    async with hooked.store.engine.connect() as conn:
        for table in (webhook_events, webhook_deliveries):
            count = await conn.execute(sa.select(sa.func.count()).select_from(table))
            assert count.scalar() == 0
    assert receiver.count() == 0
