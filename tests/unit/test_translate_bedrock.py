"""Bedrock records: Chat Completions bodies as Claude's Bedrock body, output records back."""

from __future__ import annotations

import orjson
import pytest

from unibatch.errors import InputError
from unibatch.providers.bedrock.adapter import STATUS, job_of, parse_record, record_id
from unibatch.providers.bedrock.translate import TRANSLATOR, claude_name
from unibatch.types import BatchStatus, RequestStatus

CHAT = "/v1/chat/completions"
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"


@pytest.mark.parametrize(
    ("model_id", "name"),
    [
        (HAIKU, "claude-3-5-haiku-20241022"),
        ("us.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4-20250514"),
        ("global.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5-20251001"),
        ("anthropic.claude-v2", "claude-v2"),
        ("amazon.nova-lite-v1:0", None),
        ("meta.llama3-70b-instruct-v1:0", None),
    ],
)
def test_claude_names(model_id: str, name: str | None) -> None:
    assert claude_name(model_id) == name


def test_chat_body_becomes_claudes_bedrock_body() -> None:
    body = {
        "model": HAIKU,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
        "max_tokens": 50,
        "user": "u-1",
    }
    native = TRANSLATOR.to_native(CHAT, body)
    assert native["anthropic_version"] == "bedrock-2023-05-31"
    assert "model" not in native and "metadata" not in native
    assert native["system"] == "be brief" and native["max_tokens"] == 50
    assert native["messages"][0]["role"] == "user"


def test_claude_rules_of_the_named_model_apply() -> None:
    body = {"model": HAIKU, "messages": [{"role": "user", "content": "hi"}], "temperature": 1.5}
    with pytest.raises(InputError, match=r"bedrock \(Anthropic Claude\) cannot honour"):
        TRANSLATOR.validate(CHAT, body)


def test_output_records_read_back() -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-20241022",
        "content": [{"type": "text", "text": "hello"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 12, "output_tokens": 3},
    }
    ok = parse_record(
        orjson.dumps({"recordId": record_id(7), "modelInput": {}, "modelOutput": message})
    )
    assert (ok.seq, ok.status, ok.custom_id) == (7, RequestStatus.SUCCEEDED, None)
    assert ok.body is not None and ok.body["choices"][0]["message"]["content"] == "hello"
    assert (ok.usage.input_tokens, ok.usage.output_tokens) == (12, 3)
    error = {"errorCode": 400, "errorMessage": "bad request"}
    bad = parse_record(orjson.dumps({"recordId": "00000000003", "modelInput": {}, "error": error}))
    assert bad.status is RequestStatus.ERRORED and bad.seq == 3
    assert bad.error is not None and (bad.error.code, bad.error.retryable) == ("400", False)
    busy = {"errorCode": 429, "errorMessage": "throttled"}
    slow = parse_record(orjson.dumps({"recordId": "00000000004", "error": busy}))
    assert slow.error is not None and slow.error.retryable


def test_every_documented_status_is_mapped() -> None:
    assert STATUS["PartiallyCompleted"] is BatchStatus.EXPIRED
    assert STATUS["Stopped"] is BatchStatus.CANCELLED
    job = job_of({"jobArn": "arn:x/abc", "status": "SomethingNew"}, None)
    assert job.status is BatchStatus.IN_PROGRESS  # polling goes on
