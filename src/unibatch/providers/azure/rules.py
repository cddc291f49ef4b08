"""What Azure OpenAI refuses in a body, as data: OpenAI's rules for every model.

A line names a deployment, and a deployment's name is the user's choice ("prod-chat"
may serve gpt-4o or o3), so the per-family rules of `unibatch.providers.openai.rules`
cannot be picked by name; only the rules that hold for every OpenAI model apply. Azure
serves OpenAI's API (https://learn.microsoft.com/azure/ai-foundry/openai/reference).
"""

from __future__ import annotations

from unibatch.providers.openai.rules import DEFAULTS
from unibatch.providers.rules import RuleTable

RULES = RuleTable(provider="azure", defaults=DEFAULTS)

__all__ = ["RULES"]
