"""The Anthropic Message Batches API emulator; see :class:`AnthropicEmulator`."""

from .app import AnthropicEmulator

__all__ = ["AnthropicEmulator"]
