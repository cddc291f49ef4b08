"""What Together refuses in a chat completions body, as data.

Together's chat completions reference (https://docs.together.ai/reference/chat-completions)
takes `stop` as a list of at most 4 strings; in a batch a request with more ends in the
error file with `batch_client_error`. Its other OpenAI fields pass through, and Together
checks them itself when the request runs. Read by the translation and by the Together
emulator. The emulator's words for the error are ours: Together's are not quoted in its
docs.
"""

from __future__ import annotations

from unibatch.providers.rules import Body, Rule, RuleTable

_SOURCE = "Together API reference, chat completions (docs.together.ai/reference/chat-completions)"
MAX_STOP = 4


def _too_many_stops(request: Body) -> list[str]:
    stop = request.get("stop")
    return [str(len(stop))] if isinstance(stop, list) and len(stop) > MAX_STOP else []


RULES = RuleTable(
    provider="together",
    defaults=(
        Rule(
            _too_many_stops,
            field="stop",
            why=f"Together takes at most {MAX_STOP} stop sequences (not {{detail}})",
            provider_message=f"stop: at most {MAX_STOP} sequences are allowed, got {{detail}}",
            source=_SOURCE,
            code="batch_client_error",
            keys=frozenset({"stop"}),
        ),
    ),
)

__all__ = ["MAX_STOP", "RULES"]
