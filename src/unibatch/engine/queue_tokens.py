"""How many input tokens a request counts against a provider's enqueued-token limit.

Where a limit is in force for an OpenAI model (OpenAI, or OpenAI's models on Azure), the
count is exact: the request is counted with the model's own tokenizer as OpenAI counts a
prompt (`unibatch.estimate.tokens`), 7-14 µs a line. Everywhere else, and for OpenAI
when no limit asks for it, the count is an approximation: about four characters of the
request's text a token, the rule of thumb OpenAI gives for English text
(https://help.openai.com/en/articles/4936856-what-are-tokens-and-how-to-count-them),
about 2 µs a line. The other providers publish no offline tokenizer (Anthropic, Gemini)
or none for their batch queue (xAI, Mistral, ...). The text is every string in the body
except the model's name: message contents, system prompts, tool definitions, embedding
inputs. It is close for English prose (less the few tokens each message adds) and low
for code and for most other languages. Either count reads the body once, so planning a
file of millions of lines stays flat in memory.
"""

from __future__ import annotations

from typing import Any

__all__ = ["input_tokens"]

# Characters per token in the approximation.
CHARS_PER_TOKEN = 4
# Keys whose string values are not prompt text.
_NOT_TEXT = frozenset({"model", "role", "type", "custom_id", "url", "method"})


def input_tokens(
    provider: str, model: str, endpoint: str, body: dict[str, Any], *, exact: bool = False
) -> int:
    """Input tokens of one request `body` (at least 1): counted with the model's tokenizer
    when `exact` and unibatch has it (OpenAI's models), else approximated.

    >>> body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi there!"}]}
    >>> input_tokens("openai", "gpt-4o-mini", "/v1/chat/completions", body)
    3
    >>> input_tokens("openai", "gpt-4o-mini", "/v1/chat/completions", body, exact=True)
    10
    """
    if exact:
        # Imported here: the tokenizer's tables cost start-up time that most runs never need.
        from unibatch.estimate.tokens import OPENAI_MODELS
        from unibatch.estimate.tokens import input_tokens as counted

        if provider in OPENAI_MODELS:
            return max(1, counted(provider, model, endpoint, body))
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
