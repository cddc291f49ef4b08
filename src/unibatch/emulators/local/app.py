"""The OpenAI-compatible server emulator (see the package docstring)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..kit import Handler, json_response
from ..openai import OpenAIEmulator


class LocalEmulator(OpenAIEmulator):
    """OpenAI's synchronous routes only, answered as the OpenAI emulator answers them."""

    name = "local"

    def api_routes(self) -> list[tuple[str, str, Handler]]:
        return [*self.sync.routes(), ("GET", "/models", self._models)]

    def authenticate(self, request: Request) -> None:
        # Local servers run without a key unless started with one; any key is taken.
        return

    async def snapshot(self) -> dict[str, Any]:
        return {"batches": [], "files": 0}

    async def _models(self, request: Request) -> Response:
        # vLLM and Ollama list what they serve; the emulator serves any name it is sent.
        model = {"id": "emulated", "object": "model", "created": 0, "owned_by": "local"}
        return json_response({"object": "list", "data": [model]})
