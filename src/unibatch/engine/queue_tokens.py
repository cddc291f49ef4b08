"""How many input tokens a request counts against a provider's enqueued-token limit.

An approximation until a tokenizer-based estimate is wired in: about four characters of
the request's text a token, the rule of thumb OpenAI gives for English text
(https://help.openai.com/en/articles/4936856-what-are-tokens-and-how-to-count-them).
The text is every string in the body except the model's name: message contents, system
prompts, tool definitions, embedding inputs. It errs on the high side for code and for
languages with long words, and never reads more than the body once, so planning a file of
millions of lines stays cheap and flat in memory.
"""

from __future__ import annotations

from typing import Any

__all__ = ["input_tokens"]

# Characters per token in the approximation.
CHARS_PER_TOKEN = 4
# Keys whose string values are not prompt text.
_NOT_TEXT = frozenset({"model", "role", "type", "custom_id", "url", "method"})


def input_tokens(provider: str, model: str, endpoint: str, body: dict[str, Any]) -> int:
    """Estimated input tokens of one request `body` (at least 1).

    >>> body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi there!"}]}
    >>> input_tokens("openai", "gpt-4o-mini", "/v1/chat/completions", body)
    3
    """
    chars = 0
    stack: list[Any] = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if isinstance(value, str):
                    if key not in _NOT_TEXT:
                        chars += len(value)
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(item, list):
            for value in item:
                if isinstance(value, str):
                    chars += len(value)
                elif isinstance(value, dict | list):
                    stack.append(value)
    return max(1, -(-chars // CHARS_PER_TOKEN))
