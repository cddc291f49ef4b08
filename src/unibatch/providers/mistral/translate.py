"""OpenAI bodies to Mistral's: the same shape, a few fields renamed.

Mistral's chat completions (https://docs.mistral.ai/api/#tag/chat) call the seed
`random_seed` and take `max_tokens` only; its embeddings
(https://docs.mistral.ai/api/#tag/embeddings) call the dimensions `output_dimension`.
`user` changes no answer and Mistral has no such field: it is dropped. What Mistral
does not take at all is refused (`rules.py`). Responses are OpenAI's shape already.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unibatch.providers.mistral.rules import RULES
from unibatch.providers.openai.translate import usage_of
from unibatch.providers.translate import EMBEDDINGS, Body, Translator, is_native, refuse
from unibatch.types import Usage

_CHAT_RENAMES = {"seed": "random_seed", "max_completion_tokens": "max_tokens"}
_EMBEDDING_RENAMES = {"dimensions": "output_dimension"}
_DROPPED = frozenset({"user"})


class MistralTranslator(Translator):
    def to_native(self, endpoint: str, body: Body) -> Body:
        if is_native(body):
            return {k: v for k, v in body.items() if k != "unibatch_native"}
        renames = _EMBEDDING_RENAMES if endpoint == EMBEDDINGS else _CHAT_RENAMES
        native: Body = {}
        for key, value in body.items():
            if key in _DROPPED:
                continue
            name = renames.get(key, key)
            if name in native:
                raise refuse("mistral", key, f"Mistral takes one {name}, and both were given")
            native[name] = value
        if endpoint != EMBEDDINGS:
            for violation in RULES.violations(native, str(body.get("model") or "")):
                raise refuse("mistral", violation.field, violation.why)
        return native

    def from_native(
        self, native: Mapping[str, Any], *, model: str = "", created: int = 0
    ) -> tuple[Body, Usage]:
        body = dict(native)
        return body, usage_of(body)


TRANSLATOR = MistralTranslator()
