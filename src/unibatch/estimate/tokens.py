"""Input and output tokens of one request, counted offline.

OpenAI models: exactly as OpenAI counts a Chat Completions prompt (its cookbook, "How to
count tokens with tiktoken"): the text of every message with the model's own encoding,
3 tokens around each message, 1 more for a `name`, and 3 that prime the reply
(`<|start|>assistant<|message|>`). Embeddings count their input alone; Responses
requests count `instructions` and each `input` item as Chat messages.

OpenAI's models on Azure are counted the same way. Other providers (Anthropic, Gemini,
xAI, Bedrock, local servers) publish no offline tokenizer:
their requests are counted the same way with o200k_base, an approximation (see the
README's "Costs" section for how far off it may be).

Parts a tokenizer cannot see are approximations everywhere: an image is counted as
OpenAI bills a 512x512 tile at high detail plus its base (765 tokens; 85 at low detail),
and tool definitions, tool calls and response schemas by the text of their JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from unibatch.estimate.encodings import DEFAULT, encoding_name, get_encoding
from unibatch.providers.translate import EMBEDDINGS, RESPONSES, is_native

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
IMAGE_TOKENS = 765
IMAGE_TOKENS_LOW = 85
# Output tokens a request may use when it sets no limit: what unibatch sends to
# Anthropic, which needs one, and a ceiling for the others (an estimate, not a cap).
DEFAULT_OUTPUT_TOKENS = 4096
# Body fields that hold the prompt besides the messages, counted as their JSON text.
_JSON_FIELDS = ("tools", "functions", "response_format", "text")


class _Counter:
    """Counts text with one encoding (a class so a line counts with one lookup)."""

    def __init__(self, encoding: str) -> None:
        self._encode = get_encoding(encoding).encode_ordinary

    def text(self, value: str) -> int:
        return len(self._encode(value)) if value else 0

    def json(self, value: Any) -> int:
        return self.text(orjson.dumps(value).decode())

    def content(self, value: Any) -> int:
        """A message's content: a string, or a list of parts (text, images, ...)."""
        if isinstance(value, str):
            return self.text(value)
        if not isinstance(value, list):
            return 0 if value is None else self.json(value)
        total = 0
        for part in value:
            if not isinstance(part, Mapping):
                total += self.content(part)
            elif isinstance(part.get("text"), str):
                total += self.text(part["text"])
            elif part.get("type") in ("image_url", "input_image"):
                image = part.get("image_url")
                detail = image.get("detail") if isinstance(image, Mapping) else part.get("detail")
                total += IMAGE_TOKENS_LOW if detail == "low" else IMAGE_TOKENS
            else:
                total += self.json(part)
        return total

    def messages(self, messages: Iterable[Any]) -> int:
        total = 0
        for message in messages:
            total += TOKENS_PER_MESSAGE
            if not isinstance(message, Mapping):
                total += self.content(message)
                continue
            for key, value in message.items():
                if key == "content":
                    total += self.content(value)
                elif isinstance(value, str):
                    total += self.text(value)
                    if key == "name":
                        total += TOKENS_PER_NAME
                elif value is not None:
                    total += self.json(value)  # tool_calls, function_call, audio
        return total

    def extras(self, body: Mapping[str, Any]) -> int:
        return sum(self.json(body[f]) for f in _JSON_FIELDS if body.get(f) is not None)

    def chat(self, body: Mapping[str, Any]) -> int:
        messages = body.get("messages")
        listed = messages if isinstance(messages, list) else []
        return self.messages(listed) + REPLY_PRIMING + self.extras(body)

    def responses(self, body: Mapping[str, Any]) -> int:
        items: list[Any] = []
        if isinstance(body.get("instructions"), str):
            items.append({"role": "system", "content": body["instructions"]})
        given = body.get("input")
        if isinstance(given, str):
            items.append({"role": "user", "content": given})
        elif isinstance(given, list):
            items.extend(given)
        return self.messages(items) + REPLY_PRIMING + self.extras(body)

    def embeddings(self, body: Mapping[str, Any]) -> int:
        value = body.get("input")
        if isinstance(value, str):
            return self.text(value)
        if not isinstance(value, list):
            return 0
        if all(isinstance(v, int) for v in value):
            return len(value)  # already tokens
        return sum(len(v) if isinstance(v, list) else self.content(v) for v in value)

    def strings(self, value: Any) -> int:
        """Every string in a body of a shape we do not model (a provider's own)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return sum(self.strings(v) for k, v in value.items() if k != "model")
        if isinstance(value, list):
            return sum(self.strings(v) for v in value)
        return 0


_counters: dict[str, _Counter] = {}


# Providers that run OpenAI's own models (Azure by deployment name, which tiktoken's
# table may not know: its default is then o200k_base, that of current models).
OPENAI_MODELS = frozenset({"openai", "azure"})


def encoding_of(provider: str, model: str) -> str:
    """The encoding a model's requests are counted with (the same for every model of a
    provider that does not run OpenAI's models)."""
    return encoding_name(model) if provider in OPENAI_MODELS else DEFAULT


def _counter(provider: str, model: str) -> _Counter:
    name = encoding_of(provider, model)
    counter = _counters.get(name)
    if counter is None:
        counter = _counters[name] = _Counter(name)
    return counter


def input_tokens(provider: str, model: str, endpoint: str, body: dict[str, Any]) -> int:
    """Prompt tokens of one request (`body` in the OpenAI shape, as in a batch line):
    OpenAI's own count for OpenAI models, an o200k_base approximation for the others.

    >>> input_tokens("openai", "gpt-4o-mini", "/v1/chat/completions",
    ...              {"messages": [{"role": "user", "content": "Hello"}]})
    8
    """
    counter = _counter(provider, model)
    if is_native(body):
        return counter.strings(body)
    if endpoint == EMBEDDINGS:
        return counter.embeddings(body)
    if endpoint == RESPONSES:
        return counter.responses(body)
    return counter.chat(body)


def _count(value: Any) -> int | None:
    # bool is an int subclass, and `true` is no count.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _first_count(values: Iterable[Any]) -> int | None:
    return next((c for c in map(_count, values) if c is not None), None)


def _generation_config(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """A native Gemini body's generation config (protobuf JSON takes either spelling)."""
    config = body.get("generationConfig", body.get("generation_config"))
    return config if isinstance(config, Mapping) else {}


def max_output_tokens(body: Mapping[str, Any], default: int | None) -> int | None:
    """The output tokens one answer may take: OpenAI's, Anthropic's or a native Gemini
    body's limit, else `default`."""
    config = _generation_config(body)
    count = _first_count(
        (
            body.get("max_completion_tokens"),
            body.get("max_tokens"),
            body.get("max_output_tokens"),
            config.get("maxOutputTokens"),
            config.get("max_output_tokens"),
        )
    )
    return default if count is None else max(count, 0)


def choices(body: Mapping[str, Any]) -> int:
    """How many answers a request asks for, each billed for its own output tokens:
    OpenAI's `n`, or `candidateCount` of a native Gemini body (translated bodies carry
    `n`, which becomes Gemini's candidate count)."""
    config = _generation_config(body)
    count = _first_count(
        (body.get("n"), config.get("candidateCount"), config.get("candidate_count"))
    )
    return 1 if count is None else max(count, 1)


def output_tokens(
    endpoint: str,
    body: Mapping[str, Any],
    native: Any = None,
    *,
    default: int = DEFAULT_OUTPUT_TOKENS,
) -> int:
    """The most output tokens a request may be billed for: its limit, else the limit of
    its translation for the provider (`native`: unibatch gives Anthropic, which needs
    one, a default), else `default`; times the answers it asks for. Embeddings produce
    none."""
    if endpoint == EMBEDDINGS:
        return 0
    limit = max_output_tokens(body, None)
    if limit is None and isinstance(native, Mapping):
        limit = max_output_tokens(native, None)
    return (default if limit is None else limit) * choices(body)
