"""OpenAI's `reasoning_effort` as Claude's effort and thinking settings.

Each Claude family reasons in its own way (`rules.MODES`, with the sources):

* Opus 4.6, Sonnet 4.6, Opus 4.7 and later: adaptive thinking, its depth set by
  `output_config.effort` (Anthropic recommends the two together on these models);
* Opus 4.5: `output_config.effort` and extended thinking with a token budget;
* Claude 3.7 Sonnet to Sonnet 4.5 and Haiku 4.5: extended thinking with a token budget;
* Claude 3.5 and 3 do not reason: `reasoning_effort` is refused.

`none` sends nothing (Claude does not think unless asked to); `minimal` is Anthropic's
lowest effort, `low`. A level a family lacks (`xhigh` before Opus 4.7, `max` on Opus 4.5,
anything above `high` for a budget) is refused by the family's rules.
"""

from __future__ import annotations

from typing import Any

from unibatch.errors import InputError
from unibatch.providers.anthropic.rules import mode
from unibatch.providers.translate import refuse

Body = dict[str, Any]
# OpenAI's values (openai-python, `shared/reasoning_effort.py`).
LEVELS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
# Thinking budgets in tokens for the levels a budget can express (Anthropic's minimum
# budget is 1024).
BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}
# Room left for the answer when the body sets no max tokens: thinking counts toward
# Anthropic's `max_tokens`, so the default grows by the thinking it allows.
ADAPTIVE_ROOM = 16384


def apply(effort: Any, params: Body, *, max_tokens_given: bool) -> None:
    """Set `params`' effort and thinking for OpenAI's `reasoning_effort` value."""
    if effort is None:
        return
    if effort not in LEVELS:
        raise InputError(f"body.reasoning_effort must be one of {', '.join(LEVELS)}")
    if effort == "none":
        return  # nothing asks Claude to think
    model = str(params.get("model") or "")
    how = mode(model)
    if not how.efforts and how.thinking is None:
        raise refuse("anthropic", "reasoning_effort", f"{model} neither thinks nor takes effort")
    if how.efforts:
        params["output_config"] = {"effort": "low" if effort == "minimal" else effort}
    if how.thinking == "adaptive":
        params["thinking"] = {"type": "adaptive"}
        if not max_tokens_given:
            params["max_tokens"] += ADAPTIVE_ROOM
        return
    budget = BUDGETS.get(effort)
    if budget is None:
        allowed = ", ".join(("none", *BUDGETS))
        raise refuse(
            "anthropic",
            "reasoning_effort",
            f"{model} thinks within a token budget, set here for {allowed} (not {effort})",
        )
    params["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if not max_tokens_given:
        params["max_tokens"] += budget
