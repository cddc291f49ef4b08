"""The Together AI Files + Batch API emulator; see :class:`TogetherEmulator`."""

from .app import TogetherEmulator

__all__ = ["TogetherEmulator"]
