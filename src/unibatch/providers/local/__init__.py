"""Any OpenAI-compatible server without a Batch API: vLLM, llama.cpp's server, Ollama,
LM Studio, Hugging Face TGI. Models are written `local/<model>` (the name the server
knows, e.g. `local/llama3.1:8b` for Ollama or `local/Qwen/Qwen2.5-7B-Instruct` for vLLM).

Every job runs through the real-time runner (one request at a time, within the limits in
`UNIBATCH_REALTIME_LIMITS`). The server's price is not known, so costs are null.

    UNIBATCH_LOCAL_BASE_URL=http://localhost:8000/v1   # vLLM; Ollama: http://localhost:11434/v1
    UNIBATCH_LOCAL_API_KEY=...                         # only if the server asks for one
"""

from unibatch.providers.spec import ProviderSpec

SPEC = ProviderSpec(
    name="local",
    adapter="unibatch.providers.local.adapter:LocalProvider",
    # The endpoints these servers share (vLLM, llama.cpp and Ollama serve both).
    endpoints=frozenset({"/v1/chat/completions", "/v1/embeddings"}),
    key_env=("UNIBATCH_LOCAL_API_KEY",),
    key_required=False,
    base_url_env="UNIBATCH_LOCAL_BASE_URL",
    default_base_url="",
    batch_limits=None,
    # Real-time requests are charged at the list price, which here is unknown.
    batch_discount=1.0,
    finds_lost_batches=False,
    has_realtime=True,
    emulator="unibatch.emulators:LocalEmulator",
    emulator_prefix="/local/v1",
)

__all__ = ["SPEC"]
