"""Anthropic's Message Batches API: requests sent inline in the create call.

Documented at https://docs.anthropic.com/en/docs/build-with-claude/batch-processing and
https://docs.anthropic.com/en/api/creating-message-batches: 100,000 requests or 256 MB
per batch, results within 24 h, half the synchronous price. A Message Batch carries no
metadata: a batch created just before a crash is found by its request count and proven
by the ids in its results.
"""

from unibatch.providers.spec import BatchLimits, ProviderSpec

SPEC = ProviderSpec(
    name="anthropic",
    rules="unibatch.providers.anthropic.rules:RULES",
    adapter="unibatch.providers.anthropic.adapter:AnthropicProvider",
    endpoints=frozenset({"/v1/chat/completions"}),
    key_env=("ANTHROPIC_API_KEY",),
    base_url_env="ANTHROPIC_BASE_URL",
    default_base_url="https://api.anthropic.com",
    batch_limits=BatchLimits(max_requests=100_000, max_bytes=256 * 1024 * 1024),
    batch_discount=0.5,
    completion_window=24 * 3600,
    # Batch requests waiting in the processing queue, over every model: 100,000 at Tier 1
    # (https://docs.anthropic.com/en/api/rate-limits#message-batches-api).
    queue_limits={"queued_requests": 100_000},
    finds_lost_batches=True,
    has_realtime=True,
    emulator="unibatch.emulators:AnthropicEmulator",
    emulator_prefix="/anthropic",
)

__all__ = ["SPEC"]
