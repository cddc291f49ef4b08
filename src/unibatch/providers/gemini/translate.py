"""OpenAI Chat Completions (the lingua franca) <-> Gemini `GenerateContentRequest`/`Response`.

Requests: every field either maps onto a Gemini field or is refused with an `InputError`
naming the field and the provider, so nothing a user asked for is dropped silently. Fields
that do not change what the model produces (`user`, `metadata`, `store`, ...) are ignored.

Choices worth knowing:

* `system` and `developer` messages, wherever they appear, become one `systemInstruction`
  (Gemini has a single system slot).
* Images: `data:` URLs become `inlineData`; `http(s)` URLs become `fileData` with the MIME
  type guessed from the path (an URL without a recognisable extension is refused: send it as a
  data URL). `gs://` and Files API URIs pass through as `fileData` too.
* JSON Schema goes through unchanged as `parametersJsonSchema` / `responseJsonSchema`, which
  accept standard JSON Schema, so no schema dialect conversion is needed.
* A `tool` message's content becomes the `functionResponse.response`: a JSON object is sent
  as is, anything else as `{"output": <content>}` (Google's convention).

Escape hatch: a body with `"unibatch_native": true` is a native `GenerateContentRequest`
(`contents`, `generationConfig`, ...) and is sent unchanged, minus the flag and `model`.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from unibatch.errors import InputError
from unibatch.providers.gemini.rules import RULES, THINKING_ONLY
from unibatch.providers.rules import bare_model
from unibatch.providers.translate import (
    CHAT,
    EMBEDDINGS,
    NATIVE_FLAG,
    Body,
    Translator,
    invalid,
    refuse,
)
from unibatch.types import Usage

PROVIDER = "gemini"

# Fields that change nothing in the output, so dropping them loses nothing.
_IGNORED = frozenset({"model", "user", "metadata", "store", "stream", "service_tier"})
_SIMPLE_CONFIG = {
    "temperature": "temperature",
    "top_p": "topP",
    "seed": "seed",
    "n": "candidateCount",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "top_logprobs": "logprobs",
    "logprobs": "responseLogprobs",
}
_HANDLED = frozenset(
    {
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning_effort",
        "modalities",
        NATIVE_FLAG,
    }
)
_PENALTIES = frozenset({"presence_penalty", "frequency_penalty"})
# Gemini 2.5 thinking budgets (tokens) for OpenAI's effort levels; later models take levels.
_THINKING_BUDGET = {"none": 0, "minimal": 0, "low": 1024, "medium": 8192, "high": 24576}
_BUDGET_FAMILIES = ("gemini-2", "gemini-1")
# 2.5 Pro's smallest thinking budget (Gemini API docs, thinking).
_SMALLEST_BUDGET = 128
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "MODEL_ARMOR": "content_filter",
}


def answered(finish_reason: str) -> bool:
    """Whether a candidate that ended for this reason holds an answer (or a refusal)."""
    return finish_reason in _FINISH


_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[^,]*)?;base64,(?P<data>.*)$", re.S)


def _error(field: str, why: str) -> InputError:
    return invalid(PROVIDER, field, why)


def _refuse(field: str, why: str) -> InputError:
    return refuse(PROVIDER, field, why)


# -- request -------------------------------------------------------------------------------


def to_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """A Chat Completions body as a Gemini `GenerateContentRequest` (camelCase JSON).

    >>> to_request({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})
    {'contents': [{'role': 'user', 'parts': [{'text': 'hi'}]}], 'generationConfig': {'maxOutputTokens': 5}}
    """  # noqa: E501
    model = str(body.get("model") or "")
    if body.get(NATIVE_FLAG) is True:
        if not isinstance(body.get("contents"), list) or not body["contents"]:
            raise _error("contents", "a native request needs a non-empty contents list")
        return _checked({k: v for k, v in body.items() if k not in (NATIVE_FLAG, "model")}, model)
    for key in body:
        if key not in _IGNORED and key not in _HANDLED and key not in _SIMPLE_CONFIG:
            raise _refuse(key, "not supported")
    if body.get("stream"):
        raise _refuse("stream", "batch requests cannot stream")
    request: dict[str, Any] = {}
    system, contents = _messages(body.get("messages"))
    if system:
        request["systemInstruction"] = {"parts": system}
    request["contents"] = contents
    tools = _tools(body.get("tools"))
    if tools:
        request["tools"] = tools
    tool_config = _tool_config(body.get("tool_choice"), bool(tools))
    if tool_config:
        request["toolConfig"] = tool_config
    if body.get("parallel_tool_calls") is False:
        raise _refuse("parallel_tool_calls", "false cannot be enforced")
    config = _generation_config(body)
    if config:
        request["generationConfig"] = config
    return _checked(request, model)


def _checked(request: dict[str, Any], model: str) -> dict[str, Any]:
    """`request`, once it breaks none of the rules Google enforces for `model`."""
    for violation in RULES.violations(request, model):
        raise _refuse(violation.field, violation.why)
    return request


def _generation_config(body: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for ours, theirs in _SIMPLE_CONFIG.items():
        value = body.get(ours)
        # A zero penalty changes nothing, and most models refuse penalties of any value.
        if value is not None and not (ours in _PENALTIES and value == 0):
            config[theirs] = value
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = body.get("stop")
    if stop is not None:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    config.update(_response_format(body.get("response_format")))
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort not in _THINKING_BUDGET:
            raise _error("reasoning_effort", f"unknown value {effort!r}")
        config["thinkingConfig"] = _thinking(str(body.get("model") or ""), effort)
    modalities = body.get("modalities")
    if modalities is not None and list(modalities) != ["text"]:
        raise _refuse("modalities", "only text output is supported")
    return config


def _thinking(model: str, effort: str) -> dict[str, Any]:
    """OpenAI's effort as Gemini's thinking setting: a level on Gemini 3 (the rules refuse
    a level the model does not take), a token budget on 2.5. Models that only think get
    their smallest budget for `minimal`, never 0 (which turns thinking off)."""
    if not bare_model(model).startswith(_BUDGET_FAMILIES):
        # The ThinkingLevel enum, as google-genai spells it (`types.ThinkingLevel`).
        return {"thinkingLevel": effort.upper()}
    budget = _THINKING_BUDGET[effort]
    if effort == "minimal" and THINKING_ONLY in RULES.rules_for(model):
        budget = _SMALLEST_BUDGET
    return {"thinkingBudget": budget}


def _response_format(fmt: Any) -> dict[str, Any]:
    if fmt is None:
        return {}
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise _error("response_format.json_schema.schema", "a JSON Schema object is required")
        return {"responseMimeType": "application/json", "responseJsonSchema": schema}
    raise _refuse("response_format.type", f"{kind!r} is not supported")


def _messages(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not isinstance(messages, list) or not messages:
        raise _error("messages", "a non-empty list is required")
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    # Gemini names the function in its response; OpenAI only gives the call id.
    call_names: dict[str, str] = {}
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _error(where, "must be an object")
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.extend(_parts(content, f"{where}.content", text_only=True))
        elif role == "user":
            contents.append({"role": "user", "parts": _parts(content, f"{where}.content")})
        elif role == "assistant":
            parts = _parts(content, f"{where}.content", text_only=True, optional=True)
            for j, call in enumerate(message.get("tool_calls") or []):
                parts.append(_function_call(call, f"{where}.tool_calls[{j}]", call_names))
            if not parts:
                raise _error(where, "an assistant message needs content or tool_calls")
            contents.append({"role": "model", "parts": parts})
        elif role == "tool":
            part = _function_response(message, where, call_names)
            # Answers to one turn's parallel calls travel together in one user turn.
            previous = contents[-1] if contents else None
            if (
                previous
                and previous["role"] == "user"
                and "functionResponse" in previous["parts"][0]
            ):
                previous["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
        else:
            raise _refuse(f"{where}.role", f"{role!r} is not supported")
    if not contents:
        raise _error("messages", "at least one user message is required")
    return system, contents


def _parts(
    content: Any, where: str, *, text_only: bool = False, optional: bool = False
) -> list[dict[str, Any]]:
    if content is None and optional:
        return []
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise _error(where, "must be a string or a list of content parts")
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"text": str(part.get("text", ""))})
        elif kind == "refusal" and not text_only:
            parts.append({"text": str(part.get("refusal", ""))})
        elif kind == "image_url" and not text_only:
            url = (part.get("image_url") or {}).get("url")
            parts.append(_media(url, f"{where}[{i}].image_url.url"))
        elif kind == "input_audio" and not text_only:
            audio = part.get("input_audio") or {}
            mime = f"audio/{audio.get('format', 'wav')}"
            parts.append({"inlineData": {"mimeType": mime, "data": audio.get("data", "")}})
        elif kind == "file" and not text_only:
            data = (part.get("file") or {}).get("file_data")
            parts.append(_media(data, f"{where}[{i}].file.file_data"))
        else:
            raise _refuse(f"{where}[{i}].type", f"{kind!r} is not supported here")
    return parts


def _media(url: Any, where: str) -> dict[str, Any]:
    if not isinstance(url, str) or not url:
        raise _error(where, "a URL is required")
    found = _DATA_URL.match(url)
    if found:
        data = found["data"]
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise _error(where, "the data URL is not valid base64") from None
        mime = found["mime"] or "application/octet-stream"
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url.startswith(("http://", "https://", "gs://")):
        mime, _ = mimetypes.guess_type(url.split("?", 1)[0])
        if mime is None:
            raise _error(where, "cannot tell the MIME type of this URL; send a data: URL")
        return {"fileData": {"mimeType": mime, "fileUri": url}}
    raise _refuse(where, "only data:, http(s):// and gs:// URLs are supported")


def _function_call(call: Any, where: str, names: dict[str, str]) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not fn.get("name") or call.get("type", "function") != "function":
        raise _error(where, "a function tool call with a name is required")
    try:
        args = orjson.loads(fn.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        raise _error(f"{where}.function.arguments", "is not valid JSON") from None
    if not isinstance(args, dict):
        raise _error(f"{where}.function.arguments", "must be a JSON object")
    if call.get("id"):
        names[str(call["id"])] = fn["name"]
    part: dict[str, Any] = {"functionCall": {"name": fn["name"], "args": args}}
    signature = ((call.get("extra_content") or {}).get("google") or {}).get("thought_signature")
    if signature:
        # Gemini 3 refuses a conversation whose function calls lost their signatures.
        part["thoughtSignature"] = signature
    return part


def _function_response(
    message: dict[str, Any], where: str, names: dict[str, str]
) -> dict[str, Any]:
    name = names.get(str(message.get("tool_call_id")))
    if name is None:
        raise _error(f"{where}.tool_call_id", "names no earlier assistant tool call")
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    try:
        value = orjson.loads(content) if isinstance(content, str) else content
    except orjson.JSONDecodeError:
        value = content
    response = value if isinstance(value, dict) else {"output": value}
    return {"functionResponse": {"name": name, "response": response}}


def _tools(tools: Any) -> list[dict[str, Any]]:
    if tools is None:
        return []
    declarations = []
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(fn, dict) or not fn.get("name"):
            raise _refuse(f"tools[{i}]", "only function tools with a name are supported")
        declaration: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            declaration["description"] = fn["description"]
        if fn.get("parameters"):
            declaration["parametersJsonSchema"] = fn["parameters"]
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}] if declarations else []


def _tool_config(choice: Any, has_tools: bool) -> dict[str, Any]:
    if choice is None:
        return {}
    if not has_tools:
        raise _error("tool_choice", "given without tools")
    if isinstance(choice, str) and choice in _TOOL_MODES:
        return {"functionCallingConfig": {"mode": _TOOL_MODES[choice]}}
    fn = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(fn, dict) and fn.get("name"):
        config = {"mode": "ANY", "allowedFunctionNames": [fn["name"]]}
        return {"functionCallingConfig": config}
    raise _refuse("tool_choice", f"{choice!r} is not supported")


# -- response ------------------------------------------------------------------------------


def usage_of(response: Mapping[str, Any]) -> Usage:
    """Our usage from `usageMetadata`; thinking tokens are output tokens, as Gemini bills."""
    meta = response.get("usageMetadata") or {}
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    return Usage(
        input_tokens=int(meta.get("promptTokenCount") or 0)
        + int(meta.get("toolUsePromptTokenCount") or 0),
        output_tokens=int(meta.get("candidatesTokenCount") or 0) + thoughts,
        cached_tokens=int(meta.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


def to_chat_completion(response: Mapping[str, Any], model: str) -> dict[str, Any]:
    """A `GenerateContentResponse` as a Chat Completions response body."""
    candidates = response.get("candidates") or []
    choices = [_choice(c, i) for i, c in enumerate(candidates)]
    if not choices:
        # The prompt itself was blocked (`promptFeedback.blockReason`): no candidate at all.
        message = {"role": "assistant", "content": None, "refusal": _block_reason(response)}
        choices = [{"index": 0, "message": message, "finish_reason": "content_filter"}]
    usage = usage_of(response)
    return {
        "id": f"chatcmpl-{response.get('responseId') or 'gemini'}",
        "object": "chat.completion",
        "created": _created(response.get("createTime")),
        "model": response.get("modelVersion") or model,
        "choices": choices,
        "usage": {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        },
    }


def _choice(candidate: Mapping[str, Any], position: int) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if part.get("thought"):
            continue  # thought summaries are not the answer
        if "text" in part:
            texts.append(part["text"])
        elif "functionCall" in part:
            fc = part["functionCall"]
            call: dict[str, Any] = {
                "id": fc.get("id") or f"call_{position}_{len(calls)}",
                "type": "function",
                "function": {
                    "name": fc.get("name", ""),
                    "arguments": orjson.dumps(fc.get("args") or {}).decode(),
                },
            }
            if part.get("thoughtSignature"):
                # Where Google's own OpenAI-compatible endpoint keeps it, so the call can
                # be sent back in a later turn, as Gemini 3 requires.
                call["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
            calls.append(call)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    reason = candidate.get("finishReason")
    finish = "tool_calls" if calls else _FINISH.get(str(reason), "stop")
    return {
        "index": int(candidate.get("index", position)),
        "message": message,
        "logprobs": _logprobs(candidate.get("logprobsResult")),
        "finish_reason": finish,
    }


def _logprobs(result: Any) -> dict[str, Any] | None:
    """`logprobsResult` (chosen token and top alternatives per step) in OpenAI's shape."""
    if not isinstance(result, dict):
        return None
    tops = result.get("topCandidates") or []
    content = []
    for step, chosen in enumerate(result.get("chosenCandidates") or []):
        alternatives = (tops[step].get("candidates") or []) if step < len(tops) else []
        content.append(
            {
                **_token(chosen),
                "top_logprobs": [_token(alt) for alt in alternatives],
            }
        )
    return {"content": content, "refusal": None}


def _token(candidate: Mapping[str, Any]) -> dict[str, Any]:
    token = str(candidate.get("token", ""))
    return {
        "token": token,
        "logprob": float(candidate.get("logProbability", 0.0)),
        "bytes": list(token.encode()),
    }


def _block_reason(response: Mapping[str, Any]) -> str:
    reason = (response.get("promptFeedback") or {}).get("blockReason") or "no candidates"
    return f"blocked by Gemini: {reason}"


def _created(stamp: Any) -> int:
    if isinstance(stamp, str):
        try:
            # Python < 3.13 parses at most microseconds: drop the nanosecond tail.
            return int(datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", stamp)).timestamp())
        except ValueError:
            pass
    return int(time.time())


# -- embeddings ----------------------------------------------------------------------------

_EMBED_FIELDS = frozenset({"model", "input", "dimensions", "encoding_format", "user"})


def to_embed_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI embeddings body as one `EmbedContentRequest` (one text per request)."""
    if body.get(NATIVE_FLAG) is True:
        return {k: v for k, v in body.items() if k not in (NATIVE_FLAG, "model")}
    for key in body:
        if key not in _EMBED_FIELDS:
            raise _refuse(key, "not supported for embeddings")
    text = body.get("input")
    if isinstance(text, list) and len(text) == 1:
        text = text[0]
    if not isinstance(text, str):
        raise _refuse("input", "one string per request (Gemini embeds one text per request)")
    if body.get("encoding_format", "float") != "float":
        raise _refuse("encoding_format", "only 'float' is supported")
    request: dict[str, Any] = {"content": {"parts": [{"text": text}]}}
    if body.get("dimensions") is not None:
        request["outputDimensionality"] = body["dimensions"]
    return request


def to_embedding_response(response: Mapping[str, Any], model: str) -> dict[str, Any]:
    """An `EmbedContentResponse` as an OpenAI embeddings response body."""
    embedding = response.get("embedding") or {}
    usage = usage_of(response)
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": embedding.get("values", [])}],
        "model": model,
        "usage": {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens},
    }


class GeminiTranslator(Translator):
    """Chat Completions and embeddings bodies as Gemini requests, and back."""

    def to_native(self, endpoint: str, body: Body) -> Body:
        if endpoint == EMBEDDINGS:
            return to_embed_request(body)
        if endpoint != CHAT:
            raise InputError(f"url {endpoint!r} is not supported (provider {PROVIDER})")
        return to_request(body)

    def from_native(
        self, native: Mapping[str, Any], *, model: str = "", created: int = 0
    ) -> tuple[Body, Usage]:
        if "embedding" in native or "embeddings" in native:
            return to_embedding_response(native, model), usage_of(native)
        return to_chat_completion(native, model), usage_of(native)


TRANSLATOR = GeminiTranslator()
