"""Credentials are masked in log lines; our upstream URL is cut from provider errors."""

from __future__ import annotations

import doctest

import pytest

import unibatch.logs
import unibatch.providers.upstream
from unibatch.logs import redact
from unibatch.providers.upstream import Upstream


@pytest.mark.parametrize("module", [unibatch.logs, unibatch.providers.upstream])
def test_the_examples_in_the_docstrings_hold(module: object) -> None:
    assert doctest.testmod(module).failed == 0  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("worker on postgresql://app:pw@db/x", "worker on postgresql://app:***@db/x"),
        ("GET https://tok@h/v1 200", "GET https://***@h/v1 200"),
        ("{'authorization': 'Bearer sk-1'}", "{'authorization': 'Bearer ***'}"),
        ("x-api-key: sk-ant-1 sent", "x-api-key: *** sent"),
        ("GET https://h/f?alt=media&key=AIza", "GET https://h/f?alt=media&key=***"),
        # Nothing secret: unchanged.
        ("GET http://127.0.0.1:8600/openai/v1/batches 200", None),
    ],
)
def test_log_lines_lose_their_credentials(line: str, masked: str | None) -> None:
    assert redact(line) == (masked if masked is not None else line)


@pytest.mark.parametrize(
    ("base", "default", "url", "where"),
    [
        ("https://api.openai.com/v1", "https://api.openai.com/v1", "batches", "POST /v1/batches"),
        (
            "http://127.0.0.1:8600/openai/v1",
            "https://api.openai.com/v1",
            "files/f/content",
            "POST /v1/files/f/content",
        ),
        (
            "https://api.anthropic.com",
            "https://api.anthropic.com",
            "https://api.anthropic.com/v1/messages/batches/m/results",
            "POST /v1/messages/batches/m/results",
        ),
        (
            "http://127.0.0.1:8600/gemini",
            "https://generativelanguage.googleapis.com",
            "http://127.0.0.1:8600/gemini/upload/v1beta/files?upload_id=u",
            "POST /upload/v1beta/files",
        ),
    ],
)
def test_a_call_is_named_by_the_providers_path(
    base: str, default: str, url: str, where: str
) -> None:
    assert Upstream(base, default).where("POST", url) == where


def test_a_providers_message_keeps_its_words_and_loses_our_url() -> None:
    up = Upstream("http://u:p@proxy.internal:3128/llm/openai/v1", "https://api.openai.com/v1")
    text = (
        "Invalid URL (POST /llm/openai/v1/nope); see https://proxy.internal:3128/llm/openai/v1/x"
        " for model openai/gpt-4o"
    )
    assert up.scrub(text) == "Invalid URL (POST /v1/nope); see /v1/x for model openai/gpt-4o"
