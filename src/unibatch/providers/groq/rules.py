"""What Groq refuses in a chat completions body, as data.

Groq's OpenAI compatibility page (https://console.groq.com/docs/openai) says these
"are currently not supported and will result in a 400 error if they are supplied":
`logprobs`, `logit_bias`, `top_logprobs` and `messages[].name`; and `n`, if supplied,
must be 1. The rules hold for every Groq model. Read by the translation (a request Groq
would refuse is refused while the file is read) and by the Groq emulator, which answers
such a request with a 400 in the batch's error file. Groq's own words for these 400s are
not quoted in its docs; the emulator's messages are ours, in Groq's error envelope.
"""

from __future__ import annotations

from typing import Any

from unibatch.providers.rules import Body, Rule, RuleTable, absent

_SOURCE = "Groq docs, OpenAI compatibility (console.groq.com/docs/openai)"


def _unsupported(name: str) -> Rule:
    return absent(
        name,
        field=name,
        why="Groq does not support it",
        provider_message=f"'{name}' is not supported",
        source=_SOURCE,
        code="invalid_request_error",
    )


def _named_messages(request: Body) -> list[str]:
    messages = request.get("messages")
    if not isinstance(messages, list):
        return []
    return [
        f"messages.{i}.name"
        for i, message in enumerate(messages)
        if isinstance(message, dict) and message.get("name") is not None
    ]


def _n_above_one(request: Body) -> list[str]:
    n: Any = request.get("n")
    return [str(n)] if n is not None and n != 1 else []


RULES = RuleTable(
    provider="groq",
    defaults=(
        *(_unsupported(name) for name in ("logprobs", "logit_bias", "top_logprobs")),
        Rule(
            _named_messages,
            field="messages",
            why="Groq does not support a message's name (at {detail})",
            provider_message="'{detail}' is not supported",
            source=_SOURCE,
            code="invalid_request_error",
            keys=frozenset({"messages"}),
        ),
        Rule(
            _n_above_one,
            field="n",
            why="Groq takes n = 1 only (not {detail})",
            provider_message="'n' : number must be at most 1",
            source=_SOURCE,
            code="invalid_request_error",
            keys=frozenset({"n"}),
        ),
    ),
)

__all__ = ["RULES"]
