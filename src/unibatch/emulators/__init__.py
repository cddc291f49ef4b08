"""In-process fakes of the providers' Batch APIs, faithful at the wire, for tests and benches.

Example::

    from openai import OpenAI
    from unibatch.emulators import EmulatorConfig, running_emulator

    with running_emulator(EmulatorConfig(time_scale=0.05)) as emu:
        client = OpenAI(base_url=emu.base_url("openai"), api_key="test")
"""

from .anthropic import AnthropicEmulator
from .gemini import GeminiEmulator
from .kit import EmulatorConfig, Fault, ProviderEmulator
from .openai import OpenAIEmulator
from .server import RunningEmulator, build_app, running_emulator, serve
from .xai import XAIEmulator

__all__ = [
    "AnthropicEmulator",
    "EmulatorConfig",
    "Fault",
    "GeminiEmulator",
    "OpenAIEmulator",
    "ProviderEmulator",
    "RunningEmulator",
    "XAIEmulator",
    "build_app",
    "running_emulator",
    "serve",
]
