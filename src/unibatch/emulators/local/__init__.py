"""An OpenAI-compatible server without a Batch API (what vLLM, llama.cpp's server, Ollama,
LM Studio and TGI serve): OpenAI's synchronous endpoints and `GET /models`, no files and no
batches, any key or none. Mounted at ``/local/v1`` for the `local` provider::

    emulator = LocalEmulator(EmulatorConfig(max_rpm=600))
    # OpenAI(base_url="http://H:P/local/v1", api_key="none").chat.completions.create(...)
"""

from .app import LocalEmulator

__all__ = ["LocalEmulator"]
