"""Translation between the lingua franca (OpenAI request and response bodies) and a
provider's own shapes: one vocabulary for every provider.

* `validate(endpoint, body)`: raise `InputError` naming the field the provider cannot
  honour; called for every request while a batch is read, before anything is sent.
* `to_native(endpoint, body)`: the request as the provider receives it.
* `from_native(native, model=..., created=...)`: the provider's response as an OpenAI
  body, and its usage.

The base class passes bodies through unchanged (what OpenAI-compatible APIs take).
Every refusal is worded by :func:`refuse`, so users read one message whatever the provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from unibatch.errors import InputError
from unibatch.types import Usage

Body = dict[str, Any]
# A body carrying this flag is already in the provider's own request shape: it is sent
# unchanged (minus the flag), for features a mapping does not cover.
NATIVE_FLAG = "unibatch_native"
CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
RESPONSES = "/v1/responses"


def refuse(provider: str, field: str, why: str) -> InputError:
    """The error for a request field `provider` cannot honour."""
    return InputError(
        f"{provider} cannot honour body.{field}: {why}; remove it, or send the provider's "
        f'own request shape with "{NATIVE_FLAG}": true',
        field=field,
    )


def invalid(provider: str, field: str, why: str) -> InputError:
    """The error for a request field whose value is malformed."""
    return InputError(f"body.{field}: {why} (provider {provider})", field=field)


def is_native(body: Mapping[str, Any]) -> bool:
    return body.get(NATIVE_FLAG) is True


class Translator:
    """Passes bodies through unchanged; subclasses translate for one provider."""

    # True when `to_native` returns a body as it is, at most without `NATIVE_FLAG`: the
    # body's stored JSON bytes can then be uploaded as they are (`HttpProvider.batch_file`)
    # instead of parsed and encoded again. A subclass that defines `to_native` is taken
    # to translate unless it says otherwise.
    verbatim: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "to_native" in cls.__dict__ and "verbatim" not in cls.__dict__:
            cls.verbatim = False

    def validate(self, endpoint: str, body: Body) -> None:
        """Raise `InputError` naming the first field the provider cannot honour."""
        self.to_native(endpoint, body)

    def to_native(self, endpoint: str, body: Body) -> Any:
        """The request as the provider receives it (`body` is not modified)."""
        return body

    def from_native(
        self, native: Mapping[str, Any], *, model: str = "", created: int = 0
    ) -> tuple[Body, Usage]:
        """The provider's response as an OpenAI body, and its usage."""
        return dict(native), Usage()
