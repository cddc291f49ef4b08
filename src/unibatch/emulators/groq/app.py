"""Groq's Files + Batch API: the OpenAI emulator under `/openai/v1`, with Groq's windows,
rules, purposes and list paging.

Mount :attr:`GroqEmulator.app` at ``/groq`` and point the official SDK at it::

    Groq(base_url="http://H:P/groq", api_key="test")

What differs from OpenAI, after Groq's batch guide (https://console.groq.com/docs/batch)
and the `groq` SDK: uploads take purpose `batch` only (results are `batch_output`); a
create names `/v1/chat/completions` and a window from `24h` to `7d`; the list pages with
`cursor` and answers `paging.next_cursor`, or returns the batches named by up to 200
`id` parameters; requests Groq does not support (`providers.groq.rules`) answer 400 in
the error file. A longer window lasts that many times `completion_window_seconds`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response

from unibatch.providers.groq.rules import RULES
from unibatch.providers.groq.window import window_seconds
from unibatch.providers.rules import RuleTable

from ..kit import json_response
from ..openai import OpenAIEmulator
from ..openai.errors import OpenAIError
from ..openai.validate import check_create

ENDPOINT = "/v1/chat/completions"
PAGE = 20
MAX_IDS = 200


class GroqEmulator(OpenAIEmulator):
    """Groq's Batch API with deterministic fake results (see the module docstring)."""

    name = "groq"
    api_root: ClassVar[str] = "/openai/v1"
    rules: ClassVar[RuleTable] = RULES
    sync_endpoints: ClassVar[tuple[str, ...]] = (ENDPOINT,)
    upload_purposes: ClassVar[frozenset[str]] = frozenset({"batch"})

    def check_create(self, body: dict[str, Any]) -> None:
        window = body.get("completion_window")
        if isinstance(window, str) and window_seconds(window) is None:
            msg = f"Invalid value: '{window}'. Durations from '24h' to '7d' are supported."
            raise OpenAIError(400, msg, param="completion_window", code="invalid_value")
        endpoint = body.get("endpoint")
        if isinstance(endpoint, str) and endpoint != ENDPOINT:
            msg = f"Invalid value: '{endpoint}'. Supported values are: '{ENDPOINT}'."
            raise OpenAIError(400, msg, param="endpoint", code="invalid_value")
        # OpenAI's checks for what is missing or mistyped, with a window Groq takes.
        valid = isinstance(window, str)
        check_create({**body, "completion_window": "24h"} if valid else body)

    def window_seconds(self, body: dict[str, Any]) -> float:
        return float(window_seconds(body["completion_window"]) or 0)

    async def _list_batches(self, request: Request) -> Response:
        # `id=a&id=b` as Groq documents it; `id[]=a` and `id=a,b` as SDKs encode lists.
        params = request.query_params
        ids = [i for v in params.getlist("id") + params.getlist("id[]") for i in v.split(",")]
        if ids:
            if len(ids) > MAX_IDS:
                msg = f"At most {MAX_IDS} batch ids may be listed at once."
                raise OpenAIError(400, msg, param="id", code="invalid_value")
            chosen = [self.batches[i] for i in ids if i in self.batches]
            data = [await self._observe(batch) for batch in chosen]
            return json_response({"object": "list", "data": data})
        newest_first = list(reversed(self.batches.values()))
        cursor = request.query_params.get("cursor")
        start = 0
        if cursor:
            found = [b.id for b in newest_first]
            if cursor not in found:
                raise OpenAIError(400, f"Invalid cursor: '{cursor}'.", param="cursor")
            start = found.index(cursor) + 1
        chosen = newest_first[start : start + PAGE]
        data = [await self._observe(batch) for batch in chosen]
        more = start + PAGE < len(newest_first)
        paging = {"next_cursor": chosen[-1].id} if more and chosen else {}
        return json_response({"object": "list", "data": data, "paging": paging})
