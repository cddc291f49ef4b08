"""The one way an emulator answers an API error: raise :class:`EmulatedError`.

Handlers and their helpers raise instead of returning an error response, so a lookup such as
``self._batch(request)`` returns the record or raises, and no caller checks what it got back.
Each provider subclasses :class:`EmulatedError` to build its own error envelope; the app's
single exception handler (installed by :class:`~.base.ProviderEmulator`) sends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from .responses import json_response


class EmulatedError(Exception):
    """An HTTP error as the provider sends it: status, JSON body and extra headers.

    Example::

        class AcmeError(EmulatedError):
            def __init__(self, status: int, message: str) -> None:
                super().__init__(status, {"error": message})

        raise AcmeError(404, "No such batch.")
    """

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = dict(headers) if headers is not None else None

    def response(self) -> Response:
        """The response that goes on the wire."""
        return json_response(self.body, self.status, self.headers)


def has_bearer_key(authorization: str) -> bool:
    """Whether an `Authorization` header carries a Bearer key (any key: emulators take
    every key)."""
    scheme, _, key = authorization.partition(" ")
    return scheme.lower() == "bearer" and bool(key.strip())


def retry_after_headers(status: int, retry_after: float | None) -> dict[str, str]:
    """The Retry-After header a provider sends with a 429 or 503 fault."""
    if retry_after is None or status not in (429, 503):
        return {}
    return {"retry-after": f"{retry_after:g}"}
