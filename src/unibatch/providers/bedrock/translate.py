"""Chat Completions bodies as Bedrock batch records, and model outputs back.

A record's `modelInput` is the model's own InvokeModel body. For Anthropic Claude
(`anthropic.claude-*`, and inference profiles such as `us.anthropic.claude-*`) that is
the Messages API body without `model` and with `anthropic_version: bedrock-2023-05-31`
(https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html),
so the Anthropic translation does the work, checked against the Claude rules of the
model the Bedrock id names. No other model family is translated: its requests are refused
unless they carry the model's own body (`"unibatch_native": true`), which is sent as
`modelInput` unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from unibatch.errors import InputError
from unibatch.providers.anthropic.translate import TRANSLATOR as ANTHROPIC
from unibatch.providers.bedrock.rules import RULES
from unibatch.providers.translate import NATIVE_FLAG, Body, Translator, is_native, refuse
from unibatch.types import Usage

ANTHROPIC_VERSION = "bedrock-2023-05-31"
# `[region.]anthropic.<name>-v<N>[:<M>]`: the region of a cross-region inference profile,
# the vendor, Anthropic's own model name, Bedrock's version suffix.
_CLAUDE = re.compile(r"^(?:[a-z]+\.)?anthropic\.(claude-[a-z0-9.-]+?)(?:-v\d+(?::\d+)?)?$")


def claude_name(model_id: str) -> str | None:
    """Anthropic's name of the model a Bedrock id names, or None when it is not Claude.

    >>> claude_name("us.anthropic.claude-3-5-haiku-20241022-v1:0")
    'claude-3-5-haiku-20241022'
    >>> claude_name("meta.llama3-70b-instruct-v1:0") is None
    True
    """
    found = _CLAUDE.match(model_id.rsplit("/", 1)[-1])
    return found.group(1) if found else None


class BedrockTranslator(Translator):
    def to_native(self, endpoint: str, body: Body) -> Body:
        model = str(body.get("model") or "")
        if is_native(body):
            return {k: v for k, v in body.items() if k not in (NATIVE_FLAG, "model")}
        for violation in RULES.violations(body, model):
            raise refuse("bedrock", violation.field, violation.why)
        name = claude_name(model)
        try:
            params = ANTHROPIC.to_native(endpoint, {**body, "model": name or "claude"})
        except InputError as exc:
            # The same refusal, named after the provider the user chose.
            raise InputError(
                exc.detail.replace("anthropic cannot", "bedrock (Anthropic Claude) cannot", 1),
                field=exc.field,
            ) from None
        if name is None:
            raise refuse(
                "bedrock",
                "model",
                f"unibatch translates requests for Anthropic Claude models only (not {model!r})",
            )
        params.pop("model", None)
        # Bedrock's Claude body has no `metadata` (the end-user id changes no answer).
        params.pop("metadata", None)
        return {"anthropic_version": ANTHROPIC_VERSION, **params}

    def from_native(
        self, native: Mapping[str, Any], *, model: str = "", created: int = 0
    ) -> tuple[Body, Usage]:
        if native.get("type") == "message":
            body, usage = ANTHROPIC.from_native(native, model=model, created=created)
            body["model"] = body.get("model") or model
            return body, usage
        # Another family's own output, asked for with a native body: kept as it came.
        return dict(native), Usage()


TRANSLATOR = BedrockTranslator()
