"""The OpenAI Files + Batch API emulator; see :class:`OpenAIEmulator`."""

from .app import OpenAIEmulator

__all__ = ["OpenAIEmulator"]
