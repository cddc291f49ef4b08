"""xAI's Batch API: a JSONL file uploaded to `/v1/files`, then a named batch.

Documented at https://docs.x.ai/docs/guides/batch-api and in xAI's REST reference
(https://docs.x.ai/docs/api-reference): 50,000 requests and 200 MB per file (the guide
of 2026-08; the older text had no request cap); a batch xAI cannot finish is cancelled by
xAI itself.
"""

from unibatch.providers.spec import BatchLimits, ProviderSpec

SPEC = ProviderSpec(
    name="xai",
    adapter="unibatch.providers.xai.adapter:XAIProvider",
    rules="unibatch.providers.xai.rules:RULES",
    endpoints=frozenset({"/v1/chat/completions"}),
    key_env=("XAI_API_KEY",),
    base_url_env="XAI_BASE_URL",
    default_base_url="https://api.x.ai/v1",
    batch_limits=BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024),
    # The sources disagree: the batch guide says 50 % off, the newer pricing page 20 % off
    # and only for grok-4.3 / grok-4.20-*. We bill 20 % off: the pricing page is what
    # invoices follow, and over-estimating a cost is the safer error. Users override it
    # with UNIBATCH_BATCH_DISCOUNTS=xai=0.5 (or 1.0 for models without a batch discount).
    batch_discount=0.8,
    # Best effort "typically within 24 hours"; a batch expires 30 days after creation,
    # when its unfinished requests are cancelled (xAI batch guide).
    completion_window=30 * 24 * 3600,
    finds_lost_batches=True,
    prices_as="x-ai",
    has_realtime=True,
    emulator="unibatch.emulators:XAIEmulator",
    emulator_prefix="/xai/v1",
)

__all__ = ["SPEC"]
