"""The OpenAPI document: complete, committed (tests/gateway/openapi.json) and in sync with
the app, and fuzzed with schemathesis against a live server: no input may produce a 5xx."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.openapi import from_url

from tests.gateway.conftest import MASTER, auth
from tests.gateway.server import running_gateway
from tests.support.emulated import provider_env
from unibatch.config import Settings
from unibatch.emulators.server import RunningEmulator
from unibatch.gateway import GatewaySettings, create_app
from unibatch.providers.registry import ProviderSet

SNAPSHOT = Path(__file__).with_name("openapi.json")
OPERATIONS = {
    ("POST", "/v1/files"),
    ("GET", "/v1/files"),
    ("GET", "/v1/files/{file_id}"),
    ("GET", "/v1/files/{file_id}/content"),
    ("DELETE", "/v1/files/{file_id}"),
    ("POST", "/v1/batches"),
    ("GET", "/v1/batches"),
    ("GET", "/v1/batches/{batch_id}"),
    ("POST", "/v1/batches/{batch_id}/cancel"),
    ("POST", "/v1/batches/{batch_id}/retry"),
    ("GET", "/v1/batches/{batch_id}/results"),
    ("POST", "/v1/keys"),
    ("GET", "/v1/keys"),
    ("DELETE", "/v1/keys/{key_id}"),
    ("GET", "/v1/usage"),
    ("POST", "/v1/webhooks"),
    ("GET", "/v1/webhooks"),
    ("DELETE", "/v1/webhooks/{endpoint_id}"),
    ("GET", "/health"),
}


@pytest.fixture
def gateway_url(
    database_url: str, emulator: RunningEmulator, gw_settings: GatewaySettings
) -> Iterator[str]:
    # On SQLite and PostgreSQL: PostgreSQL refuses values SQLite stores (NUL in text,
    # over-long strings), so only fuzzing both finds every 500.
    # No worker: fuzzed batches are validated and stored, never sent. (A fuzzed body such
    # as {"n": 10**12} is valid, and the emulator would try to answer it.)
    app = create_app(
        Settings(database_url=database_url),
        gateway_settings=gw_settings,
        worker=False,
        providers=ProviderSet(provider_env(emulator)),
    )
    with running_gateway(app) as url:
        yield url


def test_the_document_is_complete_and_matches_the_committed_copy(gateway_url: str) -> None:
    document: dict[str, Any] = httpx.get(f"{gateway_url}/openapi.json").json()
    found = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    assert found == OPERATIONS
    for path, item in document["paths"].items():
        for method, operation in item.items():
            ok = operation["responses"]["200"]["content"]
            assert any("schema" in media and media["schema"] for media in ok.values()) or (
                path.endswith("/content")
            ), (method, path)
    assert httpx.get(f"{gateway_url}/docs").status_code == 200
    if os.environ.get("UNIBATCH_UPDATE_OPENAPI"):
        SNAPSHOT.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    committed = json.loads(SNAPSHOT.read_text())
    assert document == committed, (
        "the API changed: review it, then rerun with UNIBATCH_UPDATE_OPENAPI=1 to update "
        f"{SNAPSHOT.name}"
    )


def test_fuzzing_every_operation_never_gets_a_server_error(gateway_url: str) -> None:
    schema = from_url(f"{gateway_url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=int(os.environ.get("UNIBATCH_FUZZ_EXAMPLES", "20")),
            # The same examples on every run, so a failure is a bug, never a fluke.
            derandomize=not os.environ.get("UNIBATCH_FUZZ_RANDOM"),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(base_url=gateway_url, headers=auth(MASTER), timeout=10)
            if response.status_code >= 500:
                failures.append(f"{case.as_curl_command()} -> {response.status_code}")

        fuzz()
    assert failures == []


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
BODIES = st.dictionaries(
    st.sampled_from(["model", "messages", "max_tokens", "stream", "input", "n"])
    | st.text(max_size=6),
    JSON,
    max_size=4,
)
LINES = st.lists(
    st.fixed_dictionaries(
        {"custom_id": st.text(min_size=1, max_size=10), "body": BODIES},
        optional={
            "url": st.sampled_from(["/v1/chat/completions", "/v1/embeddings", "/x"]),
            "method": st.sampled_from(["POST", "GET"]),
        },
    ),
    min_size=1,
    max_size=4,
)


def test_fuzzed_requests_and_files_never_get_a_server_error(gateway_url: str) -> None:
    """The schema fuzzing above mostly fails validation; here the bodies are well formed
    and only their requests are arbitrary, so the engine's own checks are fuzzed."""
    http = httpx.Client(base_url=gateway_url, headers=auth(MASTER), timeout=10)

    @settings(
        # UNIBATCH_FUZZ_EXAMPLES=2000 UNIBATCH_FUZZ_RANDOM=1 for a deeper, random search.
        max_examples=int(os.environ.get("UNIBATCH_FUZZ_EXAMPLES", "60")),
        derandomize=not os.environ.get("UNIBATCH_FUZZ_RANDOM"),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        lines=LINES,
        model=st.sampled_from(
            [
                None,
                "openai/gpt-4o-mini",
                "anthropic/x",
                "gemini/gemini-2.5-flash",
                "xai/grok-4",
                "q",
            ]
        ),
        raw=st.binary(max_size=64),
    )
    def fuzz(lines: list[dict[str, Any]], model: str | None, raw: bytes) -> None:
        inline = http.post("/v1/batches", json={"model": model, "requests": lines})
        assert inline.status_code < 500, inline.text
        data = b"".join(json.dumps(line).encode() + b"\n" for line in lines) + raw
        file = http.post("/v1/files", files={"file": ("f.jsonl", data)}, data={"purpose": "batch"})
        assert file.status_code == 200, file.text
        created = http.post("/v1/batches", json={"input_file_id": file.json()["id"]})
        assert created.status_code < 500, created.text

    fuzz()
