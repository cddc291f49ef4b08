"""OpenAI's Batch API: JSONL files uploaded with purpose `batch`, then `/v1/batches`.

Documented at https://platform.openai.com/docs/guides/batch and in the API reference
(https://platform.openai.com/docs/api-reference/batch): 50,000 requests and 200 MB per
input file, a 24 h completion window, half the synchronous price.
"""

from unibatch.providers.spec import BatchLimits, ProviderSpec

SPEC = ProviderSpec(
    name="openai",
    adapter="unibatch.providers.openai.adapter:OpenAIProvider",
    endpoints=frozenset({"/v1/chat/completions", "/v1/embeddings", "/v1/responses"}),
    key_env=("OPENAI_API_KEY",),
    base_url_env="OPENAI_BASE_URL",
    default_base_url="https://api.openai.com/v1",
    # "/v1/embeddings batches are also restricted to a maximum of 50,000 embedding inputs
    # across all requests in the batch" (openai-python, `batch_create_params.py`).
    batch_limits=BatchLimits(
        max_requests=50_000, max_bytes=200 * 1024 * 1024, max_embedding_inputs=50_000
    ),
    batch_discount=0.5,
    completion_window=24 * 3600,
    # Input tokens enqueued per model and organisation are limited by usage tier
    # (https://platform.openai.com/docs/guides/rate-limits; an organisation's own figures
    # are on https://platform.openai.com/settings/organization/limits). The tiers differ by
    # a factor of a thousand, so no figure is assumed here: a lowest-tier default would
    # hold every larger organisation to a small fraction of its queue. Until a deployment
    # sets its figures (UNIBATCH_QUEUE_LIMITS), the first batch OpenAI refuses for the
    # limit (`token_limit_exceeded`, at no charge) teaches it.
    finds_lost_batches=True,
    has_realtime=True,
    rules="unibatch.providers.openai.rules:RULES",
    emulator="unibatch.emulators:OpenAIEmulator",
    emulator_prefix="/openai/v1",
)

__all__ = ["SPEC"]
