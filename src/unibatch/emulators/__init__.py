"""In-process fakes of the providers' Batch APIs, faithful at the wire, for tests and benches.

Example::

    from openai import OpenAI
    from unibatch.emulators import EmulatorConfig, running_emulator

    with running_emulator(EmulatorConfig(time_scale=0.05)) as emu:
        client = OpenAI(base_url=emu.base_url("openai"), api_key="test")
"""

from .anthropic import AnthropicEmulator
from .azure import AzureOpenAIEmulator
from .bedrock import BedrockEmulator
from .gemini import GeminiEmulator
from .groq import GroqEmulator
from .kit import EmulatorConfig, Fault, ProviderEmulator
from .local import LocalEmulator
from .mistral import MistralEmulator
from .openai import OpenAIEmulator
from .server import RunningEmulator, build_app, running_emulator, serve
from .together import TogetherEmulator
from .xai import XAIEmulator

__all__ = [
    "AnthropicEmulator",
    "AzureOpenAIEmulator",
    "BedrockEmulator",
    "EmulatorConfig",
    "Fault",
    "GeminiEmulator",
    "GroqEmulator",
    "LocalEmulator",
    "MistralEmulator",
    "OpenAIEmulator",
    "ProviderEmulator",
    "RunningEmulator",
    "TogetherEmulator",
    "XAIEmulator",
    "build_app",
    "running_emulator",
    "serve",
]
