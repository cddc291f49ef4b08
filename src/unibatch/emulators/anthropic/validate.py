"""What the Message Batches API rejects, and when.

A create call fails synchronously (400) on the shape of its ``requests`` list and on
custom_id rules (:class:`RequestCheck`); the ``params`` of each request are checked later,
and a bad one becomes an errored result row (:func:`params_error`), as on the real API.
"""

from __future__ import annotations

import re
from typing import Any

from unibatch.providers.anthropic.rules import RULES

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# Top-level Messages params the emulator accepts; anything else is an `Extra inputs` error,
# which catches adapters that leak OpenAI fields into the params.
PARAMS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
        "stream",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
        "output_config",
        "output_format",
    }
)


class RequestCheck:
    """The synchronous 400s of a create call (custom_id rules), one request at a time."""

    def __init__(self, max_requests: int) -> None:
        self.max_requests = max_requests
        self.seen: set[str] = set()

    def item(self, i: int, item: Any) -> str | None:
        if i >= self.max_requests:
            return f"requests: List should have at most {self.max_requests} items after validation"
        if not isinstance(item, dict):
            return f"requests.{i}: Input should be a valid dictionary"
        custom_id = item.get("custom_id")
        if custom_id is None:
            return f"requests.{i}.custom_id: Field required"
        if not isinstance(custom_id, str):
            return f"requests.{i}.custom_id: Input should be a valid string"
        if len(custom_id) > 64:
            return f"requests.{i}.custom_id: String should have at most 64 characters"
        if not CUSTOM_ID.match(custom_id):
            return f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
        if "params" not in item:
            return f"requests.{i}.params: Field required"
        if custom_id in self.seen:
            return (
                "requests: custom_id's must be unique within a batch. "
                f"Duplicate custom_id found: {custom_id}"
            )
        self.seen.add(custom_id)
        return None

    @staticmethod
    def end(count: int) -> str | None:
        if count == 0:
            return "requests: List should have at least 1 item after validation, not 0"
        return None


def params_error(params: Any) -> str | None:
    """The `invalid_request_error` message the real API would give later, if any."""
    if not isinstance(params, dict):
        return "params: Input should be a valid dictionary"
    for key in params:
        if key not in PARAMS:
            return f"{key}: Extra inputs are not permitted"
    if not isinstance(params.get("model"), str) or not params["model"]:
        return "model: Field required"
    max_tokens = params.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        return "max_tokens: Field required"
    if max_tokens < 1:
        return "max_tokens: Input should be greater than or equal to 1"
    if params.get("stream") is True:
        return "stream: Streaming is not supported in the Message Batches API"
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: Field required"
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
    # The per-model rules unibatch's translation reads too.
    for violation in RULES.violations(params, params["model"]):
        return violation.provider_message
    return None
