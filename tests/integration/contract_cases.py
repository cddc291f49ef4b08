"""What the provider contract suite expects of each provider, where providers differ.

The scenarios themselves live in ``test_provider_contract.py`` and assert what every
provider must do; a case adds the inputs a provider needs and the assertions that only
hold for it (its wire format, its error codes, how much of an expired batch it keeps).
A newly registered provider needs one ``Case`` subclass here, listed in ``CASES``.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from tests.support.emulated import chat_lines, emulator_state
from unibatch.emulators import ProviderEmulator, RunningEmulator
from unibatch.engine import Engine
from unibatch.types import Result


class Case:
    """A provider's inputs and extra assertions; the defaults suit a provider without quirks."""

    name: ClassVar[str]
    model: ClassVar[str]  # provider/model, as a user writes it
    # Whether an expired batch keeps the results that finished before its deadline.
    keeps_results_on_expiry: ClassVar[bool] = True
    # How the emulator's state names a batch the engine cancelled.
    cancelled_status: ClassVar[str] = "cancelled"
    storm_retry_after: ClassVar[float] = 0.2

    def lines(self, n: int) -> list[dict[str, Any]]:
        return chat_lines(n, model=self.model)

    def success_lines(self) -> list[dict[str, Any]]:
        return self.lines(60)

    async def check_success(
        self, emulator: RunningEmulator, engine: Engine, batch_id: str, first: Result
    ) -> None:
        """What only this provider's results and wire show after a successful batch."""

    def partial_failure_lines(self) -> list[dict[str, Any]]:
        return self.lines(80)

    def check_partial_failure(
        self, batch_id: str, rows: dict[str, Result], errored: list[Result]
    ) -> None:
        """What only this provider's errored rows show."""

    def expire_at(self, emulator: ProviderEmulator, seconds: float) -> None:
        """Make batches created from now on expire `seconds` (unscaled) after creation."""
        emulator.config.completion_window_seconds = seconds

    def check_cancelled(self, seen: dict[str, Any]) -> None:
        """What only this provider's emulator state shows of a cancelled batch."""

    def check_storm(self, emulator: ProviderEmulator) -> None:
        """What only this provider's wire shows after a 429 storm."""


class OpenAI(Case):
    name = "openai"
    model = "openai/gpt-4o-mini"


ODD_IDS = ["has space", "x" * 65, "ünïcödé-id", "ubseq-3", "dots.and/slashes"]


class Anthropic(Case):
    name = "anthropic"
    model = "anthropic/claude-haiku-4-5"
    cancelled_status = "ended"

    def success_lines(self) -> list[dict[str, Any]]:
        # Anthropic refuses these custom_ids (and one looks like the engine's own).
        return self.lines(5) + [
            {**line, "custom_id": cid} for line, cid in zip(self.lines(5), ODD_IDS, strict=True)
        ]

    async def check_success(
        self, emulator: RunningEmulator, engine: Engine, batch_id: str, first: Result
    ) -> None:
        # Every request travels as `<job id>-<seq>`, whatever the user's id: the ids prove
        # whose batch it is after a crash, and map back by position.
        (job,) = await engine.store.jobs_of(batch_id)
        assert sent_custom_ids(emulator.emulators["anthropic"]) == [
            f"{job.id}-{i}" for i in range(10)
        ]
        assert first.raw is not None and first.raw["result"]["type"] == "succeeded"

    def partial_failure_lines(self) -> list[dict[str, Any]]:
        return self.lines(60)

    def check_partial_failure(
        self, batch_id: str, rows: dict[str, Result], errored: list[Result]
    ) -> None:
        assert all(r.error is not None and r.error.retryable for r in errored)
        assert {r.error.code for r in errored if r.error} <= {"api_error", "overloaded_error"}
        line = errored[0].as_openai(batch_id)
        assert line["response"]["status_code"] in (500, 529)

    def check_cancelled(self, seen: dict[str, Any]) -> None:
        assert seen["cancel_initiated_at"] is not None

    def check_storm(self, emulator: ProviderEmulator) -> None:
        # Every fault refused a create, so nothing was made twice and no search was needed.
        assert emulator.requests_seen["POST /v1/messages/batches"] == 7
        assert emulator.requests_seen["GET /v1/messages/batches"] == 0


def sent_custom_ids(emulator: ProviderEmulator) -> list[str]:
    """The custom_ids the Anthropic emulator stored for its (only) batch, in order."""
    (batch,) = emulator.batches.values()  # type: ignore[attr-defined]
    with batch.path.open("rb") as fh:
        return [json.loads(line)["custom_id"] for line in fh]


class Gemini(Case):
    name = "gemini"
    model = "gemini/gemini-2.5-flash"
    keeps_results_on_expiry = False
    cancelled_status = "BATCH_STATE_CANCELLED"

    def success_lines(self) -> list[dict[str, Any]]:
        lines = self.lines(40)
        for line in lines:
            line["body"]["temperature"] = 0.2
        return lines

    async def check_success(
        self, emulator: RunningEmulator, engine: Engine, batch_id: str, first: Result
    ) -> None:
        assert first.raw is not None and first.raw["metadata"] == {"key": "ubseq-0"}
        seen = emulator_state(emulator, "gemini")
        assert [b["inline"] for b in seen["batches"]] == [True]
        assert seen["batches"][0]["display_name"].startswith("ubj_")
        assert seen["requests_seen"].get("POST /upload/v1beta/files") is None

    def partial_failure_lines(self) -> list[dict[str, Any]]:
        return self.lines(60)

    def check_partial_failure(
        self, batch_id: str, rows: dict[str, Result], errored: list[Result]
    ) -> None:
        assert {r.error.retryable for r in errored if r.error} == {True, False}

    def expire_at(self, emulator: ProviderEmulator, seconds: float) -> None:
        # Gemini expires a batch at twice its target window.
        emulator.config.completion_window_seconds = seconds / 2


class XAI(Case):
    name = "xai"
    model = "xai/grok-4-fast-non-reasoning"
    storm_retry_after = 0.1

    async def check_success(
        self, emulator: RunningEmulator, engine: Engine, batch_id: str, first: Result
    ) -> None:
        assert first.response is not None
        assert "cost_in_usd_ticks" not in first.response["usage"]
        assert first.raw is not None and first.raw["batch_request_id"] == "r-00000"
        state = emulator_state(emulator, "xai")
        assert [b["name"] for b in state["batches"]] == [
            j.id for j in await engine.store.jobs_of(batch_id)
        ]

    def partial_failure_lines(self) -> list[dict[str, Any]]:
        lines = self.lines(80)
        lines[5]["body"]["max_tokens"] = -5  # xAI answers this one with a bare error string
        return lines

    def check_partial_failure(
        self, batch_id: str, rows: dict[str, Result], errored: list[Result]
    ) -> None:
        assert len(errored) > 1
        bad = rows["r-00005"].error
        assert bad is not None and "max_tokens = -5" in bad.message

    def expire_at(self, emulator: ProviderEmulator, seconds: float) -> None:
        emulator.expire_seconds = seconds  # type: ignore[attr-defined]


class Azure(Case):
    name = "azure"
    # A deployment named after its model (the portal's default), so genai-prices knows it.
    model = "azure/gpt-4o-mini"

    async def check_success(
        self, emulator: RunningEmulator, engine: Engine, batch_id: str, first: Result
    ) -> None:
        seen = emulator_state(emulator, "azure")["requests_seen"]
        # Azure's own paths, each with its api-version (the emulator refuses calls without).
        assert seen["POST /openai/files"] == 1 and seen["POST /openai/batches"] == 1


class Bedrock(Case):
    name = "bedrock"
    model = "bedrock/anthropic.claude-3-5-haiku-20241022-v1:0"
    cancelled_status = "Stopped"

    async def check_success(
        self, emulator: RunningEmulator, engine: Engine, batch_id: str, first: Result
    ) -> None:
        # The record as Bedrock wrote it: the Claude body sent, and the model's answer.
        assert first.raw is not None and first.raw["recordId"] == "00000000000"
        assert first.raw["modelInput"]["anthropic_version"] == "bedrock-2023-05-31"
        assert "model" not in first.raw["modelInput"]
        assert first.raw["modelOutput"]["type"] == "message"
        (job,) = await engine.store.jobs_of(batch_id)
        (seen,) = emulator_state(emulator, "bedrock")["batches"]
        assert seen["name"] == job.id.replace("_", "-")

    def check_partial_failure(
        self, batch_id: str, rows: dict[str, Result], errored: list[Result]
    ) -> None:
        assert {r.error.code for r in errored if r.error} == {"500"}
        assert all(r.error is not None and r.error.retryable for r in errored)


class Groq(Case):
    name = "groq"
    model = "groq/llama-3.1-8b-instant"

    async def check_success(
        self, emulator: RunningEmulator, engine: Engine, batch_id: str, first: Result
    ) -> None:
        # Every call went under Groq's /openai/v1, and the batch asked for the default window.
        seen = emulator_state(emulator, "groq")["requests_seen"]
        assert seen["POST /openai/v1/batches"] == 1
        assert all(key.split(" ")[1].startswith("/openai/v1/") for key in seen)

    def partial_failure_lines(self) -> list[dict[str, Any]]:
        lines = self.lines(80)
        lines[7]["body"]["n"] = 1  # n = 1 is the one n Groq takes
        return lines


class Mistral(Case):
    name = "mistral"
    model = "mistral/mistral-small-latest"
    cancelled_status = "CANCELLED"

    async def check_success(
        self, emulator: RunningEmulator, engine: Engine, batch_id: str, first: Result
    ) -> None:
        # Lines carry no method or url (the job names the endpoint), and the job the model
        # and our tag.
        (batch,) = emulator.emulators["mistral"].batches.values()  # type: ignore[attr-defined]
        with batch.input_path.open("rb") as fh:
            assert set(json.loads(fh.readline())) == {"custom_id", "body"}
        (job,) = await engine.store.jobs_of(batch_id)
        assert batch.ctx.model == "mistral-small-latest"
        assert batch.metadata == {"unibatch_tag": job.id}

    def partial_failure_lines(self) -> list[dict[str, Any]]:
        lines = self.lines(80)
        lines[3]["body"]["seed"] = 7  # sent as Mistral's random_seed
        return lines


class Together(Case):
    name = "together"
    model = "together/meta-llama/Llama-3.3-70B-Instruct-Turbo"
    cancelled_status = "CANCELLED"

    async def check_success(
        self, emulator: RunningEmulator, engine: Engine, batch_id: str, first: Result
    ) -> None:
        # A job carries no metadata: its input file is named after the job, to be found
        # again after a crash.
        (job,) = await engine.store.jobs_of(batch_id)
        provider = emulator.emulators["together"]
        (batch,) = provider.batches.values()  # type: ignore[attr-defined]
        assert provider.files[batch.input_file_id].filename == f"{job.id}.jsonl"  # type: ignore[attr-defined]

    def check_partial_failure(
        self, batch_id: str, rows: dict[str, Result], errored: list[Result]
    ) -> None:
        codes = {r.error.code: r.error.retryable for r in errored if r.error}
        assert codes.keys() <= {"batch_client_error", "batch_server_error"}
        assert codes.get("batch_client_error") is not True


CASES: dict[str, Case] = {
    case.name: case
    for case in (
        OpenAI(),
        Anthropic(),
        Gemini(),
        XAI(),
        Azure(),
        Bedrock(),
        Groq(),
        Mistral(),
        Together(),
    )
}
