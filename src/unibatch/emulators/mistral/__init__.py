"""The Mistral Files + Batch API emulator; see :class:`MistralEmulator`."""

from .app import MistralEmulator

__all__ = ["MistralEmulator"]
