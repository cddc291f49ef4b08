"""The xAI batch emulator over real loopback HTTP (httpx): files, create, counters, paged
results with bare-string errors, cancel, expiry, xAI's own cancel, list, auth and faults."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.support.clock import ShiftedClock
from unibatch.emulators import RunningEmulator
from unibatch.emulators.xai import XAIEmulator
from unibatch.providers.base import JobSpec, RequestLine
from unibatch.providers.xai import SPEC as XAI
from unibatch.providers.xai.adapter import XAIProvider

DAY = r"^\d{4}-\d{2}-\d{2}$"


@pytest.fixture
def api(emulator: RunningEmulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": "Bearer test-key"}
    with httpx.Client(
        base_url=emulator.base_url("xai") + "/", headers=headers, timeout=10
    ) as client:
        yield client


def xai(emulator: RunningEmulator) -> XAIEmulator:
    found = emulator.emulators["xai"]
    assert isinstance(found, XAIEmulator)
    return found


def line(custom_id: str, text: str = "hello", model: str = "grok-4-fast", **body: Any) -> bytes:
    payload = {"model": model, "messages": [{"role": "user", "content": text}], **body}
    request = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions"}
    return orjson.dumps({**request, "body": payload})


def upload(api: httpx.Client, lines: list[bytes]) -> dict[str, Any]:
    data = b"\n".join(lines) + b"\n"
    response = api.post("files", files={"file": ("in.jsonl", data, "application/jsonl")})
    assert response.status_code == 200, response.text
    return dict(response.json())


def create(api: httpx.Client, lines: list[bytes], name: str = "job") -> httpx.Response:
    file_id = upload(api, lines)["id"]
    return api.post("batches", json={"name": name, "input_file_id": file_id})


def submit(api: httpx.Client, n: int, name: str = "job", **body: Any) -> dict[str, Any]:
    response = create(api, [line(f"req-{i:03d}", f"question {i}", **body) for i in range(n)], name)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_for(
    api: httpx.Client, batch_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 10
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        batch = dict(api.get(f"batches/{batch_id}").json())
        if done(batch):
            return batch
        assert time.monotonic() < deadline, f"batch stuck at {batch['state']}"
        time.sleep(0.01)


def finished(batch: dict[str, Any]) -> bool:
    state = batch["state"]
    return bool(state["num_requests"]) and state["num_pending"] == 0


def all_results(api: httpx.Client, batch_id: str, limit: int = 1000) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if token:
            params["pagination_token"] = token
        page = api.get(f"batches/{batch_id}/results", params=params).json()
        rows += page["results"]
        token = page["pagination_token"]
        if not token:
            return rows


# -- the happy path ----------------------------------------------------------------------


def test_upload_create_poll_and_read_paged_results(
    api: httpx.Client, emulator: RunningEmulator
) -> None:
    # Long enough (1 s scaled) that the create answer always arrives while the file is
    # still being ingested, however loaded the machine is.
    emulator.config.validating_seconds = 20.0
    file_obj = upload(api, [line("a")])
    assert file_obj["id"].startswith("file_") and file_obj["object"] == "file"
    assert file_obj["bytes"] > 0 and file_obj["expires_at"] > file_obj["created_at"]

    created = submit(api, 25, name="happy")
    assert created["batch_id"].startswith("batch_") and created["name"] == "happy"
    assert created["input_file_id"].startswith("file_")
    assert re.match(DAY, created["create_time"])  # REST dates are date-only
    assert created["expire_time"] >= created["create_time"]
    assert created["cancel_time"] is None and created["cancel_by_xai_message"] is None
    assert created["state"]["num_requests"] == 0  # still ingesting the file
    assert "status" not in created

    batch = wait_for(api, created["batch_id"], finished)
    assert batch["state"] == {
        "num_requests": 25,
        "num_pending": 0,
        "num_success": 25,
        "num_error": 0,
        "num_cancelled": 0,
    }
    first = api.get(f"batches/{batch['batch_id']}/results", params={"limit": 7}).json()
    assert len(first["results"]) == 7 and first["pagination_token"]
    rows = all_results(api, batch["batch_id"], limit=7)
    ids = [r["batch_request_id"] for r in rows]
    assert sorted(ids) == [f"req-{i:03d}" for i in range(25)]
    assert ids != sorted(ids)  # order is not guaranteed, and here it is not input order
    completion = rows[0]["batch_result"]["response"]["chat_get_completion"]
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["role"] == "assistant"
    usage = completion["usage"]
    assert usage["prompt_tokens"] > 0 and usage["cost_in_usd_ticks"] > 0


def test_results_are_deterministic_and_reasoning_is_outside_completion_tokens(
    api: httpx.Client,
) -> None:
    batch = submit(api, 3, model="grok-3-mini")
    wait_for(api, batch["batch_id"], finished)
    once, twice = all_results(api, batch["batch_id"]), all_results(api, batch["batch_id"])
    assert once == twice
    usage = once[0]["batch_result"]["response"]["chat_get_completion"]["usage"]
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    assert reasoning > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] + reasoning


def test_results_are_readable_before_the_batch_finishes(
    api: httpx.Client, emulator: RunningEmulator
) -> None:
    xai(emulator).config.in_progress_seconds = 60.0  # scaled: 3 s
    batch = submit(api, 40)
    running = wait_for(api, batch["batch_id"], lambda b: 0 < b["state"]["num_success"] < 40)
    rows = all_results(api, batch["batch_id"])
    assert 0 < len(rows) < 40
    assert len(rows) >= running["state"]["num_success"]


def test_request_metadata_pages(api: httpx.Client) -> None:
    batch = submit(api, 5)
    wait_for(api, batch["batch_id"], finished)
    page = api.get(f"batches/{batch['batch_id']}/requests", params={"limit": 3}).json()
    assert len(page["batch_request_metadata"]) == 3 and page["pagination_token"]
    item = page["batch_request_metadata"][0]
    assert item["batch_request_id"] == "req-000" and item["state"] == "succeeded"
    assert item["model"] == "grok-4-fast" and item["endpoint"] == "/v1/chat/completions"


# -- failures ----------------------------------------------------------------------------


def test_errors_are_bare_strings_next_to_successes(
    api: httpx.Client, emulator: RunningEmulator
) -> None:
    xai(emulator).config.failure_rate = 0.3
    lines = [line(f"req-{i:03d}", f"q {i}") for i in range(30)]
    lines.append(line("bad", max_tokens=-5))
    created = create(api, lines).json()
    batch = wait_for(api, created["batch_id"], finished)
    state = batch["state"]
    assert state["num_error"] > 1 and state["num_success"] + state["num_error"] == 31
    rows = {r["batch_request_id"]: r["batch_result"] for r in all_results(api, batch["batch_id"])}
    errors = [r["error"] for r in rows.values() if "error" in r]
    assert len(errors) == state["num_error"]
    assert all(isinstance(e, str) and e for e in errors)
    assert rows["bad"] == {
        "error": "Maximum number of tokens max_tokens must be positive but max_tokens = -5"
    }


def test_unknown_model_and_duplicate_ids_are_rejected_at_create(api: httpx.Client) -> None:
    unknown = create(api, [line("a", model="gpt-4o")])
    assert unknown.status_code == 400
    assert unknown.json() == {
        "code": "Client specified an invalid argument",
        "error": "Model gpt-4o is not supported for batch processing.",
    }
    duplicate = create(api, [line("a"), line("a")])
    assert duplicate.status_code == 412
    assert "'a'" in duplicate.json()["error"]
    missing = api.post("batches", json={"name": "x", "input_file_id": "file_nope"})
    assert missing.status_code == 404
    assert api.get("batches").json()["batches"] == []


def test_malformed_line_is_cancelled_by_xai_with_a_message(api: httpx.Client) -> None:
    created = create(api, [line("a"), b"{not json"])
    assert created.status_code == 200
    batch = created.json()
    assert batch["cancel_by_xai_message"].startswith("JSONL file validation failed: line 2")
    assert set(batch["state"].values()) == {0}


def test_cancel_by_xai_knob_stops_a_batch_mid_run(
    api: httpx.Client, emulator: RunningEmulator
) -> None:
    provider = xai(emulator)
    provider.config.in_progress_seconds = 40.0  # scaled: 2 s
    provider.cancel_by_xai_message = "capacity"
    batch = submit(api, 20)
    stopped = wait_for(api, batch["batch_id"], lambda b: b["cancel_by_xai_message"] is not None)
    assert stopped["cancel_by_xai_message"] == "capacity" and stopped["cancel_time"] is None
    state = stopped["state"]
    assert state["num_pending"] == 0 and 0 < state["num_cancelled"] < 20
    assert len(all_results(api, batch["batch_id"])) == 20


def test_cancel_then_counters_revert_as_in_flight_work_lands(
    api: httpx.Client, emulator: RunningEmulator, emulator_clock: ShiftedClock
) -> None:
    config = xai(emulator).config
    config.in_progress_seconds = 2000.0  # scaled: 100 s for 40 requests
    config.cancelling_seconds = 500.0  # scaled: 25 s of in-flight work after the cancel
    batch = submit(api, 40)
    emulator_clock.advance(25.0)
    wait_for(api, batch["batch_id"], lambda b: b["state"]["num_success"] >= 5)
    cancelled = api.post(f"batches/{batch['batch_id']}:cancel").json()
    assert cancelled["cancel_time"] is not None
    before = cancelled["state"]
    assert before["num_pending"] == 0 and before["num_cancelled"] > 0
    emulator_clock.advance(30.0)  # past the in-flight work
    after = api.get(f"batches/{batch['batch_id']}").json()["state"]
    assert after["num_success"] > before["num_success"]
    assert after["num_cancelled"] < before["num_cancelled"]
    rows = all_results(api, batch["batch_id"])
    assert len(rows) == 40
    cancelled_rows = [r for r in rows if r["batch_result"].get("error") == "Batch cancelled"]
    assert len(cancelled_rows) == after["num_cancelled"]


def test_cancel_after_the_end_changes_nothing(api: httpx.Client) -> None:
    batch = submit(api, 2)
    wait_for(api, batch["batch_id"], finished)
    cancelled = api.post(f"batches/{batch['batch_id']}:cancel").json()
    assert cancelled["cancel_time"] is None and cancelled["state"]["num_success"] == 2


def test_expiry_cancels_unfinished_requests_and_keeps_the_rest(
    api: httpx.Client, emulator: RunningEmulator
) -> None:
    provider = xai(emulator)
    provider.config.in_progress_seconds = 40.0  # scaled: 2 s
    provider.expire_seconds = 20.0  # scaled: 1 s, mid-run
    batch = submit(api, 30)
    ended = wait_for(api, batch["batch_id"], finished)
    state = ended["state"]
    assert ended["cancel_time"] is None and ended["cancel_by_xai_message"] is None
    assert 0 < state["num_cancelled"] < 30 and state["num_success"] > 0
    rows = all_results(api, batch["batch_id"])
    assert (
        sum(r["batch_result"].get("error") == "Batch cancelled" for r in rows)
        == (state["num_cancelled"])
    )


def test_inline_requests_cannot_be_added_to_a_file_batch(api: httpx.Client) -> None:
    batch = submit(api, 1)
    added = api.post(f"batches/{batch['batch_id']}/requests", json={"batch_requests": []})
    assert added.status_code == 412


# -- list, auth, faults ------------------------------------------------------------------


def test_list_pages_with_pagination_token(api: httpx.Client) -> None:
    names = [submit(api, 1, name=f"b{i}")["name"] for i in range(3)]
    first = api.get("batches", params={"limit": 2}).json()
    assert [b["name"] for b in first["batches"]] == ["b2", "b1"]  # newest first
    second = api.get("batches", params={"pagination_token": first["pagination_token"]}).json()
    assert [b["name"] for b in second["batches"]] == ["b0"]
    assert second["pagination_token"] is None
    assert sorted(names) == ["b0", "b1", "b2"]


def test_missing_key_is_401_in_xai_shape(emulator: RunningEmulator) -> None:
    response = httpx.get(emulator.base_url("xai") + "/batches")
    assert response.status_code == 401
    assert set(response.json()) == {"code", "error"}


def test_wrong_key_is_400_as_on_xai(emulator: RunningEmulator) -> None:
    xai(emulator).api_keys = frozenset({"right"})
    wrong = httpx.get(
        emulator.base_url("xai") + "/batches", headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "Client specified an invalid argument"
    assert wrong.json()["error"].startswith("Incorrect API key provided")
    right = httpx.get(
        emulator.base_url("xai") + "/batches", headers={"Authorization": "Bearer right"}
    )
    assert right.status_code == 200


def test_injected_429_carries_retry_after(api: httpx.Client, emulator: RunningEmulator) -> None:
    xai(emulator).inject_faults(2, status=429, retry_after=3)
    for _ in range(2):
        response = api.get("batches")
        assert response.status_code == 429
        assert response.headers["retry-after"] == "3"
        assert response.json()["code"] == "Some resource has been exhausted"
    assert api.get("batches").status_code == 200


def test_xai_knobs_over_http(emulator: RunningEmulator) -> None:
    url = emulator.base_url("xai") + "/_emulator/xai"
    changed = httpx.post(url, json={"cancel_by_xai_message": "maintenance"}).json()
    assert changed["cancel_by_xai_message"] == "maintenance"
    assert xai(emulator).cancel_by_xai_message == "maintenance"
    assert httpx.post(url, json={"nope": 1}).status_code == 400
    assert httpx.post(url, json={"expire_seconds": "soon"}).status_code == 400


# -- the adapter against the emulator ------------------------------------------------------


async def test_adapter_finds_its_batch_again_by_name(emulator: RunningEmulator) -> None:
    provider = XAIProvider(XAI, "test-key", emulator.base_url("xai"))
    try:
        spec = JobSpec("ubj_1", "grok-4-fast", "/v1/chat/completions", "ubj_1", 2, 100)

        async def lines() -> Any:
            for i in range(2):
                body = {"model": "grok-4-fast", "messages": [{"role": "user", "content": "x"}]}
                yield RequestLine(f"c{i}", body, i)

        job = await provider.submit(spec, lines())
        assert job.tag == "ubj_1"
        found = await provider.find("ubj_1", since=time.time() - 300)
        assert found is not None and found.id == job.id
        assert await provider.find("ubj_other", since=time.time() - 300) is None
    finally:
        await provider.aclose()


def test_inline_mode_adds_requests_atomically_and_idempotently(api: httpx.Client) -> None:
    batch = api.post("batches", json={"name": "inline"}).json()
    assert "input_file_id" not in batch and batch["state"]["num_requests"] == 0
    url = f"batches/{batch['batch_id']}/requests"

    def item(rid: str | None, text: str = "hi", model: str = "grok-4-fast") -> dict[str, Any]:
        chat = {"model": model, "messages": [{"role": "user", "content": text}]}
        entry: dict[str, Any] = {"batch_request": {"chat_get_completion": chat}}
        return entry if rid is None else {"batch_request_id": rid, **entry}

    assert api.post(url, json={"batch_requests": [item("text-1"), item(None)]}).status_code == 200
    assert api.post(url, json={"batch_requests": [item("text-1")]}).status_code == 200  # same
    differs = api.post(url, json={"batch_requests": [item("text-1", "other")]})
    assert differs.status_code == 412
    assert differs.json()["error"] == (
        "batch_request_id 'text-1' content differs from originally submitted"
    )
    refused = api.post(url, json={"batch_requests": [item("text-2"), item("x", model="gpt-4o")]})
    assert refused.status_code == 400  # one bad item rejects the whole call
    done = wait_for(api, batch["batch_id"], finished)
    assert done["state"]["num_requests"] == 2
    ids = sorted(r["batch_request_id"] for r in all_results(api, batch["batch_id"]))
    assert ids[0].startswith("batch_request_") and ids[1] == "text-1"
    other = api.post("batches", json={"name": "inline-2"}).json()
    api.post(f"batches/{other['batch_id']}:cancel")
    late = api.post(f"batches/{other['batch_id']}/requests", json={"batch_requests": [item("a")]})
    assert late.status_code == 403
