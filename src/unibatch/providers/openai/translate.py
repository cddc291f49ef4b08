"""OpenAI bodies need no translation: the lingua franca is OpenAI's own format.

They are checked against the rules OpenAI enforces per model family (`rules.py`), so a
request OpenAI would refuse is refused while the file is read. Only usage is read out of
responses (chat completions, embeddings and responses name their token counts
differently)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unibatch.providers.openai.rules import RULES
from unibatch.providers.rules import RuleTable
from unibatch.providers.translate import NATIVE_FLAG, Body, Translator, refuse
from unibatch.types import Usage


class OpenAITranslator(Translator):
    """OpenAI bodies checked against `rules`; refusals name `provider` (a service that
    serves OpenAI's models over OpenAI's wire format reuses this with its own table)."""

    # Bodies are sent as written; only a body flagged native loses its flag.
    verbatim = True

    def __init__(self, provider: str = "openai", rules: RuleTable = RULES) -> None:
        self.provider = provider
        self.rules = rules

    def to_native(self, endpoint: str, body: Body) -> Body:
        if body.get(NATIVE_FLAG) is True:
            body = {k: v for k, v in body.items() if k != NATIVE_FLAG}
        for violation in self.rules.violations(body, str(body.get("model") or "")):
            raise refuse(self.provider, violation.field, violation.why)
        return body

    def from_native(
        self, native: Mapping[str, Any], *, model: str = "", created: int = 0
    ) -> tuple[Body, Usage]:
        body = dict(native)
        return body, usage_of(body)


TRANSLATOR = OpenAITranslator()


_NONE: dict[str, Any] = {}


def usage_of(body: dict[str, Any]) -> Usage:
    # Positional arguments and a shared empty dict: this runs once per result row.
    usage = body.get("usage") or _NONE
    if "prompt_tokens" in usage:  # chat completions, embeddings
        details = usage.get("prompt_tokens_details") or _NONE
        out_details = usage.get("completion_tokens_details") or _NONE
        return Usage(
            int(usage["prompt_tokens"] or 0),
            int(usage.get("completion_tokens") or 0),
            int(details.get("cached_tokens") or 0),
            int(out_details.get("reasoning_tokens") or 0),
        )
    details = usage.get("input_tokens_details") or _NONE
    out_details = usage.get("output_tokens_details") or _NONE
    return Usage(  # responses API
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
        reasoning_tokens=int(out_details.get("reasoning_tokens") or 0),
    )
