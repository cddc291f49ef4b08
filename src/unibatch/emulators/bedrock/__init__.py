"""The Amazon Bedrock batch inference emulator; see :class:`BedrockEmulator`."""

from .app import BedrockEmulator

__all__ = ["BedrockEmulator"]
