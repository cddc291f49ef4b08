"""What Mistral refuses in a chat completions body, as data.

Mistral's chat request (the `mistralai` SDK's `ChatCompletionRequest`, generated from
https://docs.mistral.ai/api/#tag/chat) has no `logit_bias`, `audio`, `modalities`,
`store`, `web_search_options` or `stream_options`, and Mistral's API answers a field it
does not know with a 422 (`extra_forbidden`, "Extra inputs are not permitted", its
validation error shape). `n` goes up to what the SDK's docs allow; nothing per model.
Read by the translation (the fields are checked after renaming, so `seed` and
`max_completion_tokens` pass as `random_seed` and `max_tokens`) and by the Mistral
emulator, which answers such a request with a 422 in the batch's error file.
"""

from __future__ import annotations

from unibatch.providers.rules import Rule, RuleTable, absent

_SOURCE = "mistralai SDK types (models/chatcompletionrequest.py), Mistral API reference"
NOT_TAKEN = ("logit_bias", "audio", "modalities", "store", "web_search_options", "stream_options")


def _not_taken(name: str) -> Rule:
    return absent(
        name,
        field=name,
        why="Mistral's chat completions take no such field",
        provider_message="Extra inputs are not permitted",
        source=_SOURCE,
        code="extra_forbidden",
    )


RULES = RuleTable(provider="mistral", defaults=tuple(_not_taken(name) for name in NOT_TAKEN))

__all__ = ["NOT_TAKEN", "RULES"]
