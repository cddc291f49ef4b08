"""The Groq Files + Batch API emulator; see :class:`GroqEmulator`."""

from .app import GroqEmulator

__all__ = ["GroqEmulator"]
