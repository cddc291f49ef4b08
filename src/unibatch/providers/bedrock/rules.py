"""What Bedrock batch inference refuses in a request, as data, besides what the model
family's own translation refuses (Anthropic Claude: `unibatch.providers.anthropic.rules`).

Source: https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference.html, the
note that batch inference does not support tool calling or structured output (each
record is processed alone).
"""

from __future__ import annotations

from unibatch.providers.rules import Rule, RuleTable, absent

_SOURCE = "Bedrock user guide, batch inference: tool use and structured output unsupported"


def _refused(name: str, what: str) -> Rule:
    return absent(
        name,
        field=name,
        why=f"Bedrock batch inference does not support {what}",
        provider_message=f"Batch inference does not support {what}.",
        source=_SOURCE,
        code="ValidationException",
    )


RULES = RuleTable(
    provider="bedrock",
    defaults=(
        _refused("tools", "tool calling"),
        _refused("tool_choice", "tool calling"),
        _refused("response_format", "structured output"),
    ),
)

__all__ = ["RULES"]
