"""The HTTP gateway (`unibatch serve`): OpenAI's files and batches API, a JSON batch API,
virtual keys with budgets, and usage accounting, in front of every provider."""

from unibatch.gateway.app import create_app
from unibatch.gateway.settings import GatewaySettings

__all__ = ["GatewaySettings", "create_app"]
