"""Azure OpenAI Global Batch: OpenAI's Batch API served under `{endpoint}/openai/...`.

Documented at https://learn.microsoft.com/azure/ai-foundry/openai/how-to/batch and its
quota page (global batch limits): the model of every line is a *deployment* name (of
type Global-Batch or Data Zone Batch), one deployment per file; 100,000 requests and
200 MB per input file; half the Global Standard price; a `24h` window that Microsoft
treats as a target, not a deadline. Embedding models are not offered in batch.
"""

from unibatch.providers.spec import BatchLimits, ProviderSpec

SPEC = ProviderSpec(
    name="azure",
    adapter="unibatch.providers.azure.adapter:AzureOpenAIProvider",
    endpoints=frozenset({"/v1/chat/completions", "/v1/responses"}),
    # The variables `openai.AzureOpenAI` reads (`src/openai/lib/azure.py`).
    key_env=("AZURE_OPENAI_API_KEY",),
    base_url_env="AZURE_OPENAI_ENDPOINT",
    # Every resource has its own endpoint (https://{resource}.openai.azure.com).
    default_base_url="",
    batch_limits=BatchLimits(max_requests=100_000, max_bytes=200 * 1024 * 1024),
    batch_discount=0.5,
    completion_window=24 * 3600,
    finds_lost_batches=True,
    has_realtime=True,
    rules="unibatch.providers.azure.rules:RULES",
    emulator="unibatch.emulators:AzureOpenAIEmulator",
    emulator_prefix="/azure",
)

__all__ = ["SPEC"]
