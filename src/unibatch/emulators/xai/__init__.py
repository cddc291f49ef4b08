"""The xAI Files + Batch REST API emulator; see :class:`XAIEmulator`."""

from .app import XAIEmulator

__all__ = ["XAIEmulator"]
