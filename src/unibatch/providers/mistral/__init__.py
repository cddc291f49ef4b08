"""Mistral's Batch API: a JSONL file uploaded with purpose `batch`, then `/v1/batch/jobs`.

Documented at https://docs.mistral.ai/capabilities/batch/ and in Mistral's API reference
(https://docs.mistral.ai/api/#tag/batch): half the synchronous price, a job timeout of
`timeout_hours` (24 by default). The guide speaks of up to a million requests a job while
Mistral's limits page gives 100,000 requests and 512 MB per batch file: the smaller is
the limit here. `MISTRAL_BASE_URL` is the server URL, as the `mistralai` SDK's
`server_url` takes it (paths start with `/v1`).
"""

from unibatch.providers.spec import BatchLimits, ProviderSpec

SPEC = ProviderSpec(
    name="mistral",
    adapter="unibatch.providers.mistral.adapter:MistralProvider",
    endpoints=frozenset({"/v1/chat/completions", "/v1/embeddings"}),
    key_env=("MISTRAL_API_KEY",),
    base_url_env="MISTRAL_BASE_URL",
    default_base_url="https://api.mistral.ai",
    batch_limits=BatchLimits(max_requests=100_000, max_bytes=512 * 1024 * 1024),
    batch_discount=0.5,
    completion_window=24 * 3600,
    finds_lost_batches=True,
    has_realtime=True,
    rules="unibatch.providers.mistral.rules:RULES",
    emulator="unibatch.emulators:MistralEmulator",
    emulator_prefix="/mistral",
)

__all__ = ["SPEC"]
