"""OpenAI Chat Completions (the lingua franca) <-> Anthropic Messages.

Requests: :func:`to_messages_params` turns a Chat Completions body into the `params` of one
Message Batches request, and raises `InputError` naming the field for anything Anthropic
cannot honour, so a batch is rejected while it is read rather than half-way through.
Responses: :func:`to_chat_completion` turns a Message into a `chat.completion` body.

Mapping decisions worth knowing:

* `system` and `developer` messages, wherever they appear, become the top-level `system`
  (Anthropic has no mid-conversation system turn).
* `max_tokens` is required by Anthropic: `max_completion_tokens`, else `max_tokens`, else
  :data:`DEFAULT_MAX_TOKENS`.
* `response_format` (`json_schema`, `json_object`) is implemented with a forced tool named
  :data:`RESPONSE_TOOL`, which every Claude model supports; the tool's input comes back as
  the message content (a JSON string) with `finish_reason: "stop"`.
* `cache_control` on content parts and on tools passes through (prompt caching).
* Dropped because they have no equivalent and change no answer: a message's `name`, an
  image's `detail`, `service_tier`.
* `strict` on a tool, and on a `json_schema` response format, becomes strict tool use.
* Every translated request is checked against the rules Anthropic enforces for its model
  (`rules.py`): a request Anthropic would refuse is refused here, before it is sent.
* `temperature` outside 0-1 is refused by the rules (OpenAI's range goes to 2; rescaling
  would change it), and so is a `max_tokens` above the model's maximum output.
* `reasoning_effort` becomes the model's effort and thinking settings (`reasoning.py`).
* Escape hatch: a body with `"unibatch_native": true` is sent as Messages params unchanged
  (minus the flag and with the bare model name), for features this mapping does not cover.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from unibatch.errors import InputError
from unibatch.providers.anthropic import reasoning
from unibatch.providers.anthropic.rules import RULES
from unibatch.providers.translate import NATIVE_FLAG, Translator, refuse
from unibatch.types import Usage

PROVIDER = "anthropic"
DEFAULT_MAX_TOKENS = 4096
RESPONSE_TOOL = "unibatch_response"

Body = dict[str, Any]
_MEDIA_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
_DATA_URL = re.compile(r"^data:(?P<media>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)$", re.S)

# Fields translated below.
_TRANSLATED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
        "user",
        "stream",
    }
)


def _is_default(*defaults: Any) -> Callable[[Any], bool]:
    return lambda value: (
        value is None or any(value == d and type(value) is type(d) for d in defaults)
    )


# Fields Anthropic has no equivalent for: accepted only at a value that changes nothing.
_NO_OP_ONLY: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n": (_is_default(1), "only one choice per request (n > 1 is not supported)"),
    "seed": (_is_default(), "no deterministic sampling seed"),
    "logprobs": (_is_default(False), "no log probabilities"),
    "top_logprobs": (_is_default(0), "no log probabilities"),
    "logit_bias": (lambda v: not v, "no logit bias"),
    "frequency_penalty": (_is_default(0, 0.0), "no frequency penalty"),
    "presence_penalty": (_is_default(0, 0.0), "no presence penalty"),
    "modalities": (lambda v: v in (None, ["text"]), "text output only"),
    "audio": (_is_default(), "no audio output"),
    "prediction": (_is_default(), "no predicted outputs"),
    "store": (_is_default(False), "no stored completions"),
    "metadata": (lambda v: not v, "no request metadata besides `user`"),
    "service_tier": (_is_default("auto", "default"), "batches run on the batch tier"),
    "stream_options": (_is_default(), "batch requests cannot stream"),
    "web_search_options": (_is_default(), "no built-in web search in this mapping"),
    "verbosity": (_is_default(), "no verbosity setting"),
    "functions": (lambda v: not v, "legacy functions: use `tools`"),
    "function_call": (_is_default(), "legacy function_call: use `tool_choice`"),
    "prompt_cache_key": (_is_default(), "caching is set with `cache_control` on content parts"),
    "safety_identifier": (_is_default(), "no safety identifier (use `user`)"),
}


def unsupported(field: str, why: str) -> InputError:
    return refuse(PROVIDER, field, why)


# -- requests ----------------------------------------------------------------------------


def to_messages_params(body: Body) -> Body:
    """The Anthropic Messages `params` for a Chat Completions body (see module docstring).

    >>> to_messages_params({"model": "claude-haiku-4-5",
    ...     "messages": [{"role": "user", "content": "Hi"}]})["max_tokens"]
    4096
    """
    if body.get(NATIVE_FLAG) is True:
        return _checked({k: v for k, v in body.items() if k != NATIVE_FLAG})
    for key, value in body.items():
        if key in _TRANSLATED:
            continue
        rule = _NO_OP_ONLY.get(key)
        if rule is None:
            raise unsupported(key, "not a Chat Completions field this mapping knows")
        accepts, why = rule
        if not accepts(value):
            raise unsupported(key, why)
    if body.get("stream"):
        raise unsupported("stream", "batch requests cannot stream")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InputError("body.messages must be a non-empty list")
    system, turns = _messages(messages)
    params: Body = {"model": body.get("model"), "max_tokens": _max_tokens(body)}
    if system is not None:
        params["system"] = system
    params["messages"] = turns
    _sampling(body, params)
    _tools(body, params)
    _response_format(body, params)
    given = any(body.get(k) is not None for k in ("max_completion_tokens", "max_tokens"))
    reasoning.apply(body.get("reasoning_effort"), params, max_tokens_given=given)
    user = body.get("user")
    if user is not None:
        if not isinstance(user, str):
            raise InputError("body.user must be a string")
        params["metadata"] = {"user_id": user}
    return _checked(params)


def _checked(params: Body) -> Body:
    """`params`, once it breaks none of the rules Anthropic enforces for its model."""
    for violation in RULES.violations(params, str(params.get("model") or "")):
        raise unsupported(violation.field, violation.why)
    return params


def _max_tokens(body: Body) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"body.{key} must be a positive integer")
        return value
    return DEFAULT_MAX_TOKENS


def _sampling(body: Body, params: Body) -> None:
    temperature = body.get("temperature")
    if temperature is not None:
        if not isinstance(temperature, int | float) or isinstance(temperature, bool):
            raise InputError("body.temperature must be a number")
        params["temperature"] = temperature
    if body.get("top_p") is not None:
        params["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop is not None:
        sequences = [stop] if isinstance(stop, str) else stop
        if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
            raise InputError("body.stop must be a string or a list of strings")
        if sequences:
            params["stop_sequences"] = sequences


# -- messages ----------------------------------------------------------------------------


def _messages(messages: list[Any]) -> tuple[str | list[Body] | None, list[Body]]:
    system: list[Body] = []
    turns: list[Body] = []
    for index, message in enumerate(messages):
        where = f"body.messages[{index}]"
        if not isinstance(message, dict):
            raise InputError(f"{where} must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), f"{where}.content"))
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), f"{where}.content")
            _append(turns, "user", blocks)
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message, where))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message, where)])
        else:
            raise unsupported(f"messages[{index}].role", f"role {role!r} has no equivalent")
    if not turns:
        raise InputError("body.messages has no user or assistant message")
    return _simplify_system(system), [_simplify_turn(t) for t in turns]


def _append(turns: list[Body], role: str, blocks: list[Body]) -> None:
    # Anthropic wants all tool results of one assistant turn in the next user turn, so
    # consecutive messages of the same role are merged into one.
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _simplify_turn(turn: Body) -> Body:
    blocks = turn["content"]
    if len(blocks) == 1 and blocks[0]["type"] == "text" and set(blocks[0]) == {"type", "text"}:
        return {"role": turn["role"], "content": blocks[0]["text"]}
    return turn


def _simplify_system(blocks: list[Body]) -> str | list[Body] | None:
    if not blocks:
        return None
    if all(set(b) == {"type", "text"} for b in blocks):
        return "\n\n".join(b["text"] for b in blocks)
    return blocks


def _with_cache(block: Body, part: Body) -> Body:
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _text_blocks(content: Any, where: str) -> list[Body]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise InputError(f"{where} must be a string or a list of content parts")
    blocks = []
    for i, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise unsupported(f"{where[5:]}[{i}]", "only text parts are allowed here")
        blocks.append(_with_cache({"type": "text", "text": part.get("text", "")}, part))
    return blocks


def _user_blocks(content: Any, where: str) -> list[Body]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise InputError(f"{where} must be a string or a list of content parts")
    blocks = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append(_with_cache({"type": "text", "text": part.get("text", "")}, part))
        elif kind == "image_url":
            blocks.append(_with_cache(_image(part.get("image_url"), f"{where}[{i}]"), part))
        elif kind == "file":
            blocks.append(_with_cache(_document(part.get("file"), f"{where}[{i}]"), part))
        else:
            raise unsupported(f"{where[5:]}[{i}].type", f"content part {kind!r} has no equivalent")
    return blocks


def _image(spec: Any, where: str) -> Body:
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str):
        raise InputError(f"{where}.image_url.url must be a string")
    # `detail` has no Anthropic equivalent and only tunes cost, so it is dropped.
    match = _DATA_URL.match(url)
    if match:
        # Browsers and some encoders write `image/jpg`, which Anthropic does not know.
        media = _MEDIA_ALIASES.get(match["media"].lower(), match["media"].lower())
        source = {"type": "base64", "media_type": media, "data": match["data"]}
        return {"type": "image", "source": source}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InputError(f"{where}.image_url.url must be an http(s) URL or a base64 data URL")


def _document(spec: Any, where: str) -> Body:
    data = spec.get("file_data") if isinstance(spec, dict) else None
    match = _DATA_URL.match(data) if isinstance(data, str) else None
    if match is None:
        raise unsupported(f"{where[5:]}.file", "only inline files (file_data data URLs) work")
    if match["media"].lower() == "text/plain":
        # Plain text has a source type of its own; base64 sources take only PDF.
        try:
            text = base64.b64decode(match["data"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InputError(f"{where}.file.file_data is not base64 UTF-8 text") from None
        return {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": text},
        }
    source = {"type": "base64", "media_type": match["media"].lower(), "data": match["data"]}
    return {"type": "document", "source": source}


def _assistant_blocks(message: Body, where: str) -> list[Body]:
    content = message.get("content")
    blocks: list[Body] = []
    if isinstance(content, list):
        for i, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                blocks.append(_with_cache({"type": "text", "text": part.get("text", "")}, part))
            elif kind != "refusal":
                raise unsupported(f"{where[5:]}.content[{i}]", f"assistant part {kind!r}")
    elif isinstance(content, str) and content:
        blocks.append({"type": "text", "text": content})
    for i, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or call.get("type", "function") != "function":
            raise unsupported(f"{where[5:]}.tool_calls[{i}]", "only function tool calls")
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            raise InputError(f"{where}.tool_calls[{i}].function.arguments is not JSON") from None
        if not isinstance(arguments, dict):
            # Anthropic's tool_use input is an object (ToolUseBlockParam.input).
            raise unsupported(
                f"{where[5:]}.tool_calls[{i}].function.arguments",
                "tool input must be a JSON object",
            )
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": arguments,
            }
        )
    if not blocks:
        raise InputError(f"{where} has neither content nor tool_calls")
    return blocks


def _tool_result(message: Body, where: str) -> Body:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise InputError(f"{where}.tool_call_id is required for a tool message")
    content = message.get("content")
    block: Body = {"type": "tool_result", "tool_use_id": call_id}
    block["content"] = (
        content if isinstance(content, str) else _text_blocks(content, f"{where}.content")
    )
    return block


# -- tools and structured output ---------------------------------------------------------


def _tools(body: Body, params: Body) -> None:
    tools = body.get("tools")
    if tools:
        params["tools"] = [_tool(t, i) for i, t in enumerate(tools)]
    choice = _tool_choice(body.get("tool_choice"))
    # Without tools there is nothing to run in parallel, and a tool_choice without tools
    # is refused.
    if tools and body.get("parallel_tool_calls") is False and (choice or {}).get("type") != "none":
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if choice is not None:
        params["tool_choice"] = choice


def _tool(tool: Any, index: int) -> Body:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or tool.get("type") != "function":
        raise unsupported(f"tools[{index}]", "only function tools")
    name = function.get("name")
    if name == RESPONSE_TOOL:
        raise InputError(f"body.tools[{index}]: the name {RESPONSE_TOOL!r} is reserved")
    out: Body = {
        "name": name,
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("strict") is True:
        # Strict tool use: Claude's input then always matches the schema.
        out["strict"] = True
    return _with_cache(out, tool)


def _tool_choice(choice: Any) -> Body | None:
    if choice is None:
        return None
    named = {"auto": "auto", "none": "none", "required": "any"}
    if isinstance(choice, str) and choice in named:
        return {"type": named[choice]}
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if isinstance(name, str):
            return {"type": "tool", "name": name}
    raise unsupported("tool_choice", f"{choice!r} is not auto, none, required or a function")


def _response_format(body: Body, params: Body) -> None:
    spec = body.get("response_format")
    kind = spec.get("type") if isinstance(spec, dict) else None
    if spec is None or kind == "text":
        return
    strict = False
    if kind == "json_schema":
        schema = (spec.get("json_schema") or {}).get("schema") or {"type": "object"}
        description = (spec.get("json_schema") or {}).get("description")
        strict = (spec.get("json_schema") or {}).get("strict") is True
    elif kind == "json_object":
        schema, description = {"type": "object"}, None
    else:
        raise unsupported("response_format", f"type {kind!r}")
    if params.get("tools") or "tool_choice" in params:
        raise unsupported("response_format", "it cannot be combined with tools or tool_choice")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        # The answer is a tool's input, which Anthropic takes as an object only.
        raise unsupported(
            "response_format.json_schema.schema",
            "Claude answers in JSON through a tool whose input must be an object: wrap the "
            "schema in an object",
        )
    # A forced tool call is the structured-output mechanism every Claude model has.
    tool: Body = {
        "name": RESPONSE_TOOL,
        "description": description or "Reply by calling this tool with the JSON answer.",
        "input_schema": schema,
    }
    if strict:
        tool["strict"] = True
    params["tools"] = [tool]
    params["tool_choice"] = {"type": "tool", "name": RESPONSE_TOOL}


# -- responses ---------------------------------------------------------------------------

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def chat_usage(usage: Body) -> Body:
    """Anthropic usage as Chat Completions usage: prompt tokens include cached ones."""
    fresh = int(usage.get("input_tokens") or 0)
    read = int(usage.get("cache_read_input_tokens") or 0)
    written = int(usage.get("cache_creation_input_tokens") or 0)
    output = int(usage.get("output_tokens") or 0)
    thinking = int((usage.get("output_tokens_details") or {}).get("thinking_tokens") or 0)
    prompt = fresh + read + written
    return {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": read},
        # Thinking is billed as output; the API counts it apart in output_tokens_details.
        "completion_tokens_details": {"reasoning_tokens": thinking},
    }


def to_chat_completion(message: Body, *, created: int = 0) -> Body:
    """A `chat.completion` body for an Anthropic Message (`created`: Unix seconds)."""
    texts: list[str] = []
    calls: list[Body] = []
    structured: str | None = None
    for block in message.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use" and block.get("name") == RESPONSE_TOOL:
            structured = orjson.dumps(block.get("input")).decode()
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": arguments},
                }
            )
        # Thinking and server-tool blocks have no Chat Completions slot; `raw` keeps them.
    stop_reason = message.get("stop_reason")
    finish = _FINISH.get(str(stop_reason), "stop")
    if structured is not None:
        content: str | None = structured
        finish = "length" if finish == "length" else "stop"
    else:
        content = "".join(texts) if texts else None
    reply: Body = {"role": "assistant", "content": content, "refusal": None}
    if calls:
        reply["tool_calls"] = calls
    return {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": created,
        "model": message.get("model"),
        "choices": [{"index": 0, "message": reply, "logprobs": None, "finish_reason": finish}],
        "usage": chat_usage(message.get("usage") or {}),
    }


class AnthropicTranslator(Translator):
    """Chat Completions bodies as Message Batches `params`, Messages as chat completions."""

    def to_native(self, endpoint: str, body: Body) -> Body:
        return to_messages_params(body)

    def from_native(
        self, native: Mapping[str, Any], *, model: str = "", created: int = 0
    ) -> tuple[Body, Usage]:
        message = dict(native)
        native_usage = message.get("usage") or {}
        usage = chat_usage(native_usage)
        # The split by lifetime (`cache_creation`) prices one-hour writes apart.
        split = native_usage.get("cache_creation") or {}
        return to_chat_completion(message, created=created), Usage(
            input_tokens=usage["prompt_tokens"],
            output_tokens=usage["completion_tokens"],
            cached_tokens=usage["prompt_tokens_details"]["cached_tokens"],
            reasoning_tokens=usage["completion_tokens_details"]["reasoning_tokens"],
            cache_write_tokens=int(native_usage.get("cache_creation_input_tokens") or 0),
            cache_write_1h_tokens=int(split.get("ephemeral_1h_input_tokens") or 0),
        )


TRANSLATOR = AnthropicTranslator()
