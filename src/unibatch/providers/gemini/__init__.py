"""Google's Gemini Developer API batch mode (`models/*:batchGenerateContent`).

Documented at https://ai.google.dev/gemini-api/docs/batch-mode: requests inline while the
create call stays under 20 MB, else a JSONL file of up to 2 GB through the Files API;
jobs that have not finished within 48 h expire; half the synchronous price.
"""

from unibatch.providers.spec import BatchLimits, ProviderSpec

SPEC = ProviderSpec(
    name="gemini",
    rules="unibatch.providers.gemini.rules:RULES",
    adapter="unibatch.providers.gemini.adapter:GeminiProvider",
    endpoints=frozenset({"/v1/chat/completions", "/v1/embeddings"}),
    key_env=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    base_url_env="GEMINI_BASE_URL",
    default_base_url="https://generativelanguage.googleapis.com",
    # No documented request count: the 2 GB input file limit binds first.
    batch_limits=BatchLimits(max_requests=1_000_000, max_bytes=2 * 1024**3),
    batch_discount=0.5,
    completion_window=48 * 3600,
    # Concurrent batch jobs per project: 100 (batch mode section of
    # https://ai.google.dev/gemini-api/docs/rate-limits). Its enqueued tokens per model
    # depend on the tier and are left to UNIBATCH_QUEUE_LIMITS.
    queue_limits={"concurrent_batches": 100},
    finds_lost_batches=True,
    prices_as="google",
    has_realtime=True,
    emulator="unibatch.emulators:GeminiEmulator",
    emulator_prefix="/gemini",
)

__all__ = ["SPEC"]
