"""The Gemini Developer API batch mode emulator; see :class:`GeminiEmulator`."""

from .app import GeminiEmulator

__all__ = ["GeminiEmulator"]
