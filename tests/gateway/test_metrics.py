"""`/metrics` scraped over HTTP from a real gateway server and parsed with
prometheus_client's own parser: the store's aggregates and this process's counters."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.server import running_gateway
from tests.support.emulated import chat_lines
from unibatch.config import Settings
from unibatch.engine import Engine
from unibatch.gateway import GatewaySettings, create_app
from unibatch.types import BatchStatus

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def process_value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def test_metrics_count_batches_requests_tokens_cost_and_provider_calls(
    engine: Engine, database_url: str, gw_settings: GatewaySettings
) -> None:
    calls = process_value("unibatch_provider_requests_total", provider="openai", code="200")
    timed = process_value("unibatch_provider_request_seconds_count", provider="openai")
    ingested = process_value("unibatch_ingested_rows_total")
    sends = process_value("unibatch_realtime_sends_total", provider="local")

    done = await engine.create_batch(chat_lines(30, prefix="a"))
    local = await engine.create_batch(chat_lines(5, "local/llama3.1:8b", prefix="l"))
    finished = [await engine.wait(b, interval=0.02, timeout=60) for b in (done, local)]
    assert all(b.status is BatchStatus.COMPLETED for b in finished)
    # One batch created and never run: pending, its job due.
    await engine.create_batch(chat_lines(7, "anthropic/claude-haiku-4-5", prefix="w"))

    # A server of its own on the database, as `unibatch serve --no-worker` runs.
    app = create_app(
        Settings(database_url=database_url), gateway_settings=gw_settings, worker=False
    )
    with running_gateway(app) as url:
        got = scrape(url)

    assert value(got, "unibatch_batches", status="completed", provider="openai") == 1
    assert value(got, "unibatch_batches", status="completed", provider="local") == 1
    assert value(got, "unibatch_batches", status="pending", provider="anthropic") == 1
    assert value(got, "unibatch_requests", status="succeeded") == 35
    assert value(got, "unibatch_requests", status="pending") == 7
    assert value(got, "unibatch_job_requests", provider="openai", status="completed") == 30
    assert value(got, "unibatch_jobs", provider="anthropic", status="pending") == 1
    usage = finished[0].usage
    assert usage.input_tokens > 0
    assert value(got, "unibatch_tokens", kind="input") == (
        usage.input_tokens + finished[1].usage.input_tokens
    )
    assert value(got, "unibatch_cost_usd", part="input") == pytest.approx(finished[0].cost.input)
    assert finished[0].cost.input > 0
    assert value(got, "unibatch_due_steps", step="job") == 1
    # Counters of this process (the engine ran here): one upload, create, polls, download.
    assert value(got, "unibatch_provider_requests_total", provider="openai", code="200") >= (
        calls + 3
    )
    assert value(got, "unibatch_provider_request_seconds_count", provider="openai") >= timed + 3
    assert value(got, "unibatch_ingested_rows_total") == ingested + 35
    assert value(got, "unibatch_realtime_sends_total", provider="local") == sends + 5


async def test_a_lapsed_lease_taken_over_is_counted_and_provider_errors_by_code(
    engine: Engine, emulator: object, gw_settings: GatewaySettings
) -> None:
    batch_id = await engine.create_batch(chat_lines(3, prefix="t"))
    # A worker that claimed the job and died: its lease ran out a second ago.
    ghost = await engine.store.claim_jobs("ghost-worker", time.time(), lease=-1.0)
    assert [job.batch_id for job in ghost] == [batch_id]
    before = process_value("unibatch_lease_takeovers_total", step="job")
    batch = await engine.wait(batch_id, interval=0.02, timeout=60)
    assert batch.status is BatchStatus.COMPLETED
    assert process_value("unibatch_lease_takeovers_total", step="job") == before + 1

    app = create_app(engine, gateway_settings=gw_settings, worker=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gw"
    ) as http:
        got = parse((await http.get("/metrics")).text)
    assert value(got, "unibatch_lease_takeovers_total", step="job") == before + 1


async def test_metrics_can_be_turned_off(engine: Engine, gw_settings: GatewaySettings) -> None:
    app = create_app(
        engine, gateway_settings=gw_settings.model_copy(update={"metrics": False}), worker=False
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gw"
    ) as http:
        assert (await http.get("/metrics")).status_code == 404
