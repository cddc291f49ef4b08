"""Together AI's Batch API: a JSONL file uploaded with purpose `batch-api`, then
`/v1/batches`.

Documented at https://docs.together.ai/docs/batch-inference and in Together's API
reference (https://docs.together.ai/reference/batch-create): at most 50,000 requests and
100 MB per input file, a 24 h best-effort window, "up to 50%" off on the models Together
lists for batch (other models run at their usual price: override the share with
`UNIBATCH_BATCH_DISCOUNTS=together=1.0` for those). A batch job carries no metadata: a
job created just before a crash is found by the name of its input file, which carries
our tag. `TOGETHER_BASE_URL` is the host, as the `together` SDK reads it.
"""

from unibatch.providers.spec import BatchLimits, ProviderSpec

SPEC = ProviderSpec(
    name="together",
    adapter="unibatch.providers.together.adapter:TogetherProvider",
    # Together also batches audio transcriptions and translations (audio by URL); not
    # offered here.
    endpoints=frozenset({"/v1/chat/completions"}),
    key_env=("TOGETHER_API_KEY",),
    base_url_env="TOGETHER_BASE_URL",
    default_base_url="https://api.together.ai",
    batch_limits=BatchLimits(max_requests=50_000, max_bytes=100 * 1024 * 1024),
    batch_discount=0.5,
    completion_window=24 * 3600,
    finds_lost_batches=True,
    has_realtime=True,
    rules="unibatch.providers.together.rules:RULES",
    emulator="unibatch.emulators:TogetherEmulator",
    emulator_prefix="/together",
)

__all__ = ["SPEC"]
