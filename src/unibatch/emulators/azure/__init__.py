"""The Azure OpenAI Files + Batch API emulator; see :class:`AzureOpenAIEmulator`."""

from .app import AzureOpenAIEmulator

__all__ = ["AzureOpenAIEmulator"]
