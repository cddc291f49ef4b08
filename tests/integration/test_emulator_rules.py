"""The emulators refuse what the providers refuse, with the providers' own errors.

Every rule in the Anthropic and Gemini rule tables (the tables translation reads too) has
a case here: a native request that breaks it, sent straight to the emulator. Both APIs
judge `params` per request, so the batch is accepted and the request's result carries
the error, as on the real services. The Anthropic batch goes through the official SDK;
the Gemini requests are written in Gemini's wire format (so the coverage check below can
read them) and their results are read back through google-genai.
"""

from __future__ import annotations

import time
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
from google import genai
from google.genai import types

from unibatch.emulators import EmulatorConfig, RunningEmulator
from unibatch.providers.anthropic.rules import RULES as ANTHROPIC_RULES
from unibatch.providers.gemini.rules import RULES as GEMINI_RULES
from unibatch.providers.openai.rules import RULES as OPENAI_RULES
from unibatch.providers.rules import Rule, RuleTable, bare_model
from unibatch.providers.xai.rules import RULES as XAI_RULES

HI = {"role": "user", "content": "Hi"}


def claude(model: str = "claude-haiku-4-5", **params: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 32, "messages": [HI], **params}


def tool_use(*ids: str) -> list[dict[str, Any]]:
    calls = [{"type": "tool_use", "id": i, "name": "get", "input": {}} for i in ids]
    results = [{"type": "tool_result", "tool_use_id": i, "content": "x"} for i in ids]
    return [HI, {"role": "assistant", "content": calls}, {"role": "user", "content": results}]


def media(kind: str, media_type: str) -> list[dict[str, Any]]:
    source = {"type": "base64", "media_type": media_type, "data": "AAAA"}
    return [{"role": "user", "content": [{"type": kind, "source": source}]}]


TOOLS = [{"name": "get", "input_schema": {"type": "object"}}]
BUDGET = {"type": "enabled", "budget_tokens": 2048}
ADAPTIVE = {"type": "adaptive"}
# custom_id -> (native params, words of Anthropic's error)
ANTHROPIC_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "temperature-deprecated": (
        claude("claude-opus-4-7", temperature=0.5),
        "`temperature` is deprecated for this model.",
    ),
    "top-p-deprecated": (claude("claude-sonnet-5", top_p=0.5), "`top_p` is deprecated"),
    "top-k-deprecated": (claude("claude-next-1", top_k=5), "`top_k` is deprecated"),
    "both-sampling": (
        claude(temperature=0.5, top_p=0.9),
        "`temperature` and `top_p` cannot both be specified for this model",
    ),
    "blank-stop": (
        claude(stop_sequences=["ok", " "]),
        "each stop sequence must contain non-whitespace",
    ),
    "tool-choice-alone": (
        claude(tool_choice={"type": "auto"}),
        "tool_choice may only be specified while providing tools",
    ),
    "tool-use-id": (
        claude(messages=tool_use("call.1"), tools=TOOLS),
        "messages.1.content.0.tool_use.id: String should match pattern",
    ),
    "tool-use-twice": (
        claude(messages=tool_use("call_1", "call_1"), tools=TOOLS),
        "messages.1.content.1: `tool_use` ids must be unique",
    ),
    "image-type": (
        claude(messages=media("image", "image/bmp")),
        "messages.0.content.0.image.source.base64.media_type: Input should be 'image/jpeg'",
    ),
    "document-type": (
        claude(messages=media("document", "application/msword")),
        "Input should be 'application/pdf'",
    ),
    "effort-unsupported": (
        claude("claude-sonnet-4-5", output_config={"effort": "low"}),
        "This model does not support the effort parameter.",
    ),
    "effort-xhigh-4-6": (
        claude("claude-opus-4-6", output_config={"effort": "xhigh"}),
        "output_config.effort: Input should be 'low'",
    ),
    "effort-max-4-5": (
        claude("claude-opus-4-5", output_config={"effort": "max"}),
        "output_config.effort: Input should be 'low'",
    ),
    "effort-sonnet-4-6": (
        claude("claude-sonnet-4-6", output_config={"effort": "xhigh"}),
        "output_config.effort",
    ),
    "effort-newest": (claude("claude-opus-5", output_config={"effort": "huge"}), "effort"),
    "budget-on-adaptive-model": (
        claude("claude-opus-4-7", max_tokens=4096, thinking=BUDGET),
        '"thinking.type.enabled" is not supported for this model',
    ),
    "budget-above-max-tokens": (
        claude(max_tokens=2048, thinking=BUDGET),
        "`max_tokens` must be greater than `thinking.budget_tokens`",
    ),
    "thinking-temperature": (
        claude(max_tokens=4096, thinking=BUDGET, temperature=0.5),
        "`temperature` may only be set to 1 when thinking is enabled",
    ),
    "thinking-top-p": (claude(max_tokens=4096, thinking=BUDGET, top_p=0.5), "top_p"),
    "thinking-top-k": (claude("claude-3-7-sonnet-latest", thinking=ADAPTIVE, top_k=5), "top_k"),
    "thinking-forced-tool": (
        claude(thinking=ADAPTIVE, tools=TOOLS, tool_choice={"type": "any"}),
        "Thinking may not be enabled when tool_choice forces tool use.",
    ),
    "temperature-above-1": (
        claude("claude-3-5-haiku-20241022", temperature=1.5),
        "temperature: Input should be less than or equal to 1",
    ),
    "temperature-below-0": (
        claude(temperature=-0.5),
        "temperature: Input should be greater than or equal to 0",
    ),
    "tool-name": (
        claude(tools=[{"name": "get.weather", "input_schema": {"type": "object"}}]),
        "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'",
    ),
    "schema-root": (
        claude(tools=[{"name": "get", "input_schema": {"type": "array"}}]),
        "tools.0.custom.input_schema.type: Input should be 'object'",
    ),
    "empty-text": (
        claude(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
        "messages: text content blocks must be non-empty",
    ),
    "unanswered-call": (
        claude(messages=[*tool_use("call_1")[:2], HI], tools=TOOLS),
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after",
    ),
    "orphan-result": (
        claude(messages=[tool_use("call_1")[2]], tools=TOOLS),
        "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks",
    ),
    "max-tokens-3": (
        claude("claude-3-haiku-20240307", max_tokens=4097),
        "max_tokens: 4097 > 4096, which is the maximum allowed number of output tokens for "
        "claude-3-haiku-20240307",
    ),
    "max-tokens-3-5": (claude("claude-3-5-haiku-20241022", max_tokens=8193), "> 8192"),
    "max-tokens-opus-4-1": (claude("claude-opus-4-1", max_tokens=32_001), "> 32000"),
    "max-tokens-haiku": (claude(max_tokens=64_001), "64001 > 64000"),
    "max-tokens-newest": (claude("claude-opus-4-7", max_tokens=128_001), "> 128000"),
}
# What the API takes: a level a family has, thinking within the rules.
ANTHROPIC_ACCEPTED: dict[str, dict[str, Any]] = {
    "effort-opus-4-7": claude(
        "claude-opus-4-7", thinking=ADAPTIVE, output_config={"effort": "xhigh"}
    ),
    "budget-haiku": claude(max_tokens=4096, thinking=BUDGET, temperature=1),
    "budget-3-7": claude(
        "claude-3-7-sonnet-latest", max_tokens=4096, thinking=BUDGET, temperature=1, top_p=0.95
    ),
    "max-tokens-at-limit": claude(max_tokens=64_000, temperature=0),
    "calls-answered": claude(messages=tool_use("call_1", "call_2"), tools=TOOLS),
    "prefilled-call": claude(messages=tool_use("call_1")[:2], tools=TOOLS),
}


def signed_turn(signature: str | None) -> list[dict[str, Any]]:
    call: dict[str, Any] = {"functionCall": {"name": "get", "args": {}}}
    if signature:
        call["thoughtSignature"] = signature
    answer = {"functionResponse": {"name": "get", "response": {"output": "x"}}}
    return [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [call]},
        {"role": "user", "parts": [answer]},
    ]


def gemini_request(contents: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    return {"contents": contents or [{"role": "user", "parts": [{"text": "Hi"}]}], **fields}


GEMINI_TOOLS = [{"functionDeclarations": [{"name": "get"}]}]
# model -> [(native request, words of Google's error)]
GEMINI_CASES: dict[str, list[tuple[dict[str, Any], str]]] = {
    "gemini-3-pro-preview": [
        (
            gemini_request(signed_turn(None), tools=GEMINI_TOOLS),
            "Function call is missing a thought_signature",
        ),
        (
            gemini_request(generationConfig={"thinkingConfig": {"thinkingLevel": "MEDIUM"}}),
            "Invalid value for thinking_level: MEDIUM",
        ),
        (
            gemini_request(generationConfig={"thinkingConfig": {"thinkingBudget": 0}}),
            "Budget 0 is invalid. This model only works in thinking mode.",
        ),
        (
            gemini_request(generationConfig={"presencePenalty": 0.5}),
            "Penalty is not enabled for models/gemini-3-pro-preview",
        ),
        (gemini_request(signed_turn("c2ln"), tools=GEMINI_TOOLS), ""),
    ],
    "gemini-3-flash-preview": [
        (
            gemini_request(generationConfig={"thinkingConfig": {"thinkingLevel": "XHIGH"}}),
            "Invalid value for thinking_level: XHIGH",
        ),
    ],
    "gemini-2.5-pro": [
        (
            gemini_request(generationConfig={"thinkingConfig": {"thinkingBudget": 0}}),
            "Budget 0 is invalid",
        ),
    ],
    "gemini-2.5-flash": [
        (
            gemini_request(
                tools=GEMINI_TOOLS, generationConfig={"responseMimeType": "application/json"}
            ),
            "Function calling with a response mime type: 'application/json' is unsupported",
        ),
        (
            gemini_request(generationConfig={"frequencyPenalty": 0.5}),
            "Penalty is not enabled for models/gemini-2.5-flash",
        ),
        (gemini_request(signed_turn(None), tools=GEMINI_TOOLS), ""),
        (
            gemini_request(generationConfig={"temperature": 2.5}),
            "generation_config.temperature: temperature must be in the range [0.0, 2.0]",
        ),
        (
            gemini_request(generationConfig={"stopSequences": list("abcdef")}),
            "at most 5 stop sequences are allowed, got 6",
        ),
        (
            gemini_request(tools=[{"functionDeclarations": [{"name": "get"}, {"name": "1st"}]}]),
            "tools[0].function_declarations[1].name: Invalid function name. Must start with a "
            "letter or an underscore.",
        ),
        (
            gemini_request(
                tools=[{"functionDeclarations": [{"name": "_ns.tool:get-1"}]}],
                generationConfig={"temperature": 2, "stopSequences": list("abcde")},
            ),
            "",
        ),
    ],
    "gemini-2.0-flash": [
        (gemini_request(generationConfig={"presencePenalty": 0.5}), ""),
        (
            gemini_request(
                tools=GEMINI_TOOLS, generationConfig={"responseMimeType": "application/json"}
            ),
            "Function calling with a response mime type",
        ),
    ],
}


def grok(model: str, **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": [HI], "max_tokens": 16, **fields}


# custom_id -> (native body, words of xAI's error; "" when it must succeed)
XAI_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "presence": (
        grok("grok-4", presence_penalty=0.5),
        "Model grok-4 does not support parameter presencePenalty.",
    ),
    "frequency": (
        grok("grok-code-fast-1", frequency_penalty=0.5),
        "Model grok-code-fast-1 does not support parameter frequencyPenalty.",
    ),
    "stop": (grok("grok-5", stop=["x"]), "Model grok-5 does not support parameter stop."),
    "effort": (
        grok("grok-4", reasoning_effort="low"),
        "Model grok-4 does not support parameter reasoningEffort.",
    ),
    "effort-value": (
        grok("grok-3-mini", reasoning_effort="medium"),
        "parameter reasoningEffort: expected one of low, high",
    ),
    "mini-effort": (grok("grok-3-mini", reasoning_effort="high"), ""),
    "plain-stop": (grok("grok-3", stop=["x"]), ""),
    "fast-stop": (grok("grok-4-fast-non-reasoning", stop=["x"]), ""),
}


def gpt(model: str = "gpt-4o-mini", **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": [HI], **fields}


BAD_NAME_TOOL = {"type": "function", "function": {"name": "get weather", "parameters": {}}}
# custom_id -> (body, OpenAI's error code, words of its message; "" when it must succeed)
OPENAI_CASES: dict[str, tuple[dict[str, Any], str | None, str]] = {
    "temperature-high": (gpt(temperature=2.5), "decimal_above_max_value", "<= 2, but got 2.5"),
    "temperature-low": (gpt(temperature=-1), "decimal_below_min_value", ">= 0"),
    "presence-high": (gpt(presence_penalty=3), "decimal_above_max_value", "presence_penalty"),
    "presence-low": (gpt(presence_penalty=-3), "decimal_below_min_value", "presence_penalty"),
    "frequency-high": (gpt(frequency_penalty=2.1), "decimal_above_max_value", "frequency"),
    "frequency-low": (gpt(frequency_penalty=-2.1), "decimal_below_min_value", "frequency"),
    "top-logprobs-high": (
        gpt(logprobs=True, top_logprobs=21),
        "integer_above_max_value",
        "Expected a value <= 20",
    ),
    "top-logprobs-low": (gpt(logprobs=True, top_logprobs=-1), "integer_below_min_value", ">= 0"),
    "top-logprobs-alone": (gpt(top_logprobs=3), "invalid_value", "logprobs must be set to true"),
    "logit-bias": (gpt(logit_bias={"50256": -101}), "invalid_value", "token 50256"),
    "stop-five": (gpt(stop=list("abcde")), "array_above_max_length", "maximum length 4"),
    "tool-name": (gpt(tools=[BAD_NAME_TOOL]), "invalid_value", "tools[0].function.name"),
    "fine": (gpt(temperature=2, stop=list("abcd"), logprobs=True, top_logprobs=20), None, ""),
    "o1-max-tokens": (
        gpt("o1", max_tokens=5),
        "unsupported_parameter",
        "Use 'max_completion_tokens' instead.",
    ),
    "o1-temperature": (
        gpt("o1", temperature=0.5),
        "unsupported_value",
        "does not support 0.5 with this model. Only the default (1) value is supported.",
    ),
    "o1-effort": (gpt("o1", reasoning_effort="minimal"), "unsupported_value", "'minimal'"),
    "o1-fine": (gpt("o1", max_completion_tokens=5, temperature=1), None, ""),
    "o3-stop": (gpt("o3-2025-04-16", stop="x"), "unsupported_parameter", "'stop'"),
    "gpt-5-top-p": (gpt("gpt-5-mini", top_p=0.5), "unsupported_parameter", "'top_p'"),
    "gpt-5-effort": (gpt("gpt-5-nano", reasoning_effort="none"), "unsupported_value", "'none'"),
    "gpt-5-4-max-tokens": (gpt("gpt-5.4", max_tokens=5), "unsupported_parameter", "max_tokens"),
}
EMBEDDING_CASES: dict[str, tuple[dict[str, Any], str | None, str]] = {
    "inputs": (
        {"model": "text-embedding-3-small", "input": ["x"] * 2049},
        "array_above_max_length",
        "maximum length 2048",
    ),
    "dimensions": (
        {"model": "text-embedding-ada-002", "input": "x", "dimensions": 8},
        "invalid_value",
        "does not support specifying dimensions",
    ),
    "embedding-fine": (
        {"model": "text-embedding-3-small", "input": "x", "dimensions": 8},
        None,
        "",
    ),
}


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(time_scale=0.02)


def every_rule(table: RuleTable) -> list[Rule]:
    rules = list(table.defaults)
    for family in table.families:
        rules += [r for r in family.rules if all(r is not seen for seen in rules)]
    return rules


def test_every_rule_has_an_emulator_case() -> None:
    anthropic_cases = [(params["model"], params) for params, _ in ANTHROPIC_CASES.values()]
    gemini_cases = [(m, req) for m, cases in GEMINI_CASES.items() for req, _ in cases]
    xai_cases = [(body["model"], body) for body, _ in XAI_CASES.values()]
    openai_cases = [
        (body["model"], body)
        for cases in (OPENAI_CASES, EMBEDDING_CASES)
        for body, _, _ in cases.values()
    ]
    tables = (
        (ANTHROPIC_RULES, anthropic_cases),
        (GEMINI_RULES, gemini_cases),
        (XAI_RULES, xai_cases),
        (OPENAI_RULES, openai_cases),
    )
    for table, cases in tables:
        for rule in every_rule(table):
            assert any(
                rule in table.rules_for(model) and list(rule.violations(request, model))
                for model, request in cases
            ), f"{table.provider}: no emulator case breaks the rule from {rule.source}"


def test_rules_skipped_by_their_fields_find_what_testing_every_rule_finds() -> None:
    """A table tests only the rules whose fields a request has (`Rule.keys`): on every
    case above it finds the same violations, in the same order, as testing every rule."""
    cases = [
        (ANTHROPIC_RULES, [(p["model"], p) for p, _ in ANTHROPIC_CASES.values()]),
        (GEMINI_RULES, [(m, req) for m, found in GEMINI_CASES.items() for req, _ in found]),
        (XAI_RULES, [(body["model"], body) for body, _ in XAI_CASES.values()]),
        (
            OPENAI_RULES,
            [
                (b["model"], b)
                for found in (OPENAI_CASES, EMBEDDING_CASES)
                for b, _, _ in found.values()
            ],
        ),
    ]
    for table, requests in cases:
        for model, request in requests:
            name = bare_model(model)
            every = [v for r in table.rules_for(model) for v in r.violations(request, name)]
            assert table.violations(request, model) == every, (table.provider, request)


def test_anthropic_emulator_errs_each_request_as_anthropic_does(emulator: RunningEmulator) -> None:
    client = anthropic.Anthropic(
        base_url=emulator.base_url("anthropic"), api_key="test", max_retries=0
    )
    ok = {"custom_id": "fine", "params": claude(temperature=0.5)}
    requests = [{"custom_id": cid, "params": p} for cid, (p, _) in ANTHROPIC_CASES.items()]
    accepted = [{"custom_id": cid, "params": p} for cid, p in ANTHROPIC_ACCEPTED.items()]
    batch = client.messages.batches.create(requests=[ok, *accepted, *requests])  # type: ignore[list-item]
    deadline = time.monotonic() + 30
    while client.messages.batches.retrieve(batch.id).processing_status != "ended":
        assert time.monotonic() < deadline, "the batch never ended"
        time.sleep(0.02)
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    for custom_id in ["fine", *ANTHROPIC_ACCEPTED]:
        assert results[custom_id].type == "succeeded", (custom_id, results[custom_id])
    for custom_id, (_, words) in ANTHROPIC_CASES.items():
        result = results[custom_id]
        assert result.type == "errored", custom_id
        assert result.error.error.type == "invalid_request_error"
        assert words in result.error.error.message, (custom_id, result.error.error.message)


@pytest.mark.parametrize("model", sorted(GEMINI_CASES))
def test_gemini_emulator_errs_each_request_as_google_does(
    emulator: RunningEmulator, model: str
) -> None:
    cases = GEMINI_CASES[model]
    inline = [
        {"request": request, "metadata": {"key": str(i)}} for i, (request, _) in enumerate(cases)
    ]
    body = {"batch": {"inputConfig": {"requests": {"requests": inline}}}}
    created = httpx.post(
        f"{emulator.base_url('gemini')}/v1beta/models/{model}:batchGenerateContent",
        json=body,
        headers={"x-goog-api-key": "test"},
        timeout=10,
    )
    created.raise_for_status()
    client = genai.Client(
        api_key="test", http_options=types.HttpOptions(base_url=emulator.base_url("gemini"))
    )
    deadline = time.monotonic() + 30
    while not (job := client.batches.get(name=created.json()["name"])).done:
        assert time.monotonic() < deadline, "the batch never ended"
        time.sleep(0.02)
    assert job.dest is not None and job.dest.inlined_responses is not None
    for (_, words), answer in zip(cases, job.dest.inlined_responses, strict=True):
        if not words:
            assert answer.error is None and answer.response is not None
            continue
        assert answer.error is not None, words
        assert answer.error.code == 400
        assert words in str(answer.error.message)


def test_xai_emulator_errs_each_request_that_breaks_a_rule(emulator: RunningEmulator) -> None:
    base = emulator.base_url("xai")
    headers = {"Authorization": "Bearer test"}
    lines = [
        {"custom_id": cid, "method": "POST", "url": "/v1/chat/completions", "body": body}
        for cid, (body, _) in XAI_CASES.items()
    ]
    data = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        file_id = client.post("/files", files={"file": ("in.jsonl", data)}).json()["id"]
        created = client.post("/batches", json={"name": "rules", "input_file_id": file_id})
        batch_id = created.json()["batch_id"]
        deadline = time.monotonic() + 30
        while True:
            state = client.get(f"/batches/{batch_id}").json()["state"]
            if int(state.get("num_requests") or 0) and not int(state.get("num_pending") or 0):
                break
            assert time.monotonic() < deadline, f"the batch never ended: {state}"
            time.sleep(0.02)
        page = client.get(f"/batches/{batch_id}/results", params={"limit": 100}).json()
    results = {row["batch_request_id"]: row["batch_result"] for row in page["results"]}
    for custom_id, (_, words) in XAI_CASES.items():
        if not words:
            assert "response" in results[custom_id], custom_id
            continue
        error = results[custom_id].get("error")
        assert isinstance(error, str), (custom_id, error)  # xAI's batch errors are bare strings
        assert words in error, (custom_id, error)


@pytest.mark.parametrize("endpoint", ["/v1/chat/completions", "/v1/embeddings"])
def test_openai_emulator_answers_each_broken_rule_with_a_400_in_the_error_file(
    emulator: RunningEmulator, endpoint: str
) -> None:
    cases = OPENAI_CASES if endpoint == "/v1/chat/completions" else EMBEDDING_CASES
    client = openai.OpenAI(base_url=emulator.base_url("openai"), api_key="test", max_retries=0)
    # One batch per model: OpenAI takes one model per input file.
    by_model: dict[str, list[str]] = {}
    for custom_id, (body, _, _) in cases.items():
        by_model.setdefault(body["model"], []).append(custom_id)
    rows: dict[str, dict[str, Any]] = {}
    for custom_ids in by_model.values():
        lines = [
            {"custom_id": cid, "method": "POST", "url": endpoint, "body": cases[cid][0]}
            for cid in custom_ids
        ]
        data = b"".join(orjson.dumps(line) + b"\n" for line in lines)
        file = client.files.create(file=("in.jsonl", data), purpose="batch")
        batch = client.batches.create(
            input_file_id=file.id,
            endpoint=endpoint,  # type: ignore[arg-type]
            completion_window="24h",
        )
        deadline = time.monotonic() + 30
        while (batch := client.batches.retrieve(batch.id)).status != "completed":
            assert batch.status not in ("failed", "expired", "cancelled"), batch
            assert time.monotonic() < deadline, "the batch never ended"
            time.sleep(0.02)
        refused = [cid for cid in custom_ids if cases[cid][1]]
        assert batch.request_counts is not None
        assert batch.request_counts.failed == len(refused)
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                for raw in client.files.content(file_id).text.splitlines():
                    row = orjson.loads(raw)
                    rows[row["custom_id"]] = row
    for custom_id, (_, code, words) in cases.items():
        response = rows[custom_id]["response"]
        if code is None:
            assert response["status_code"] == 200, (custom_id, response)
            continue
        assert response["status_code"] == 400, custom_id
        error = response["body"]["error"]
        assert error["type"] == "invalid_request_error"
        assert error["code"] == code, (custom_id, error)
        assert words in error["message"], (custom_id, error)
        assert error["param"]
