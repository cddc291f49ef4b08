"""Groq's Batch API: OpenAI's files and batches, under `/openai/v1` on api.groq.com.

Documented at https://console.groq.com/docs/batch and in Groq's API reference
(https://console.groq.com/docs/api-reference#batches): input files of at most 50,000
lines and 200 MB, a completion window from 24 h up to 7 d, half the synchronous price
(not stacked with prompt caching). `GROQ_BASE_URL` is the host, as the `groq` SDK reads
it; the adapter adds `/openai/v1`.
"""

from unibatch.providers.spec import BatchLimits, ProviderSpec

SPEC = ProviderSpec(
    name="groq",
    adapter="unibatch.providers.groq.adapter:GroqProvider",
    # Groq also batches audio transcriptions and translations, which take audio URLs
    # rather than an OpenAI chat body; they are not offered here.
    endpoints=frozenset({"/v1/chat/completions"}),
    key_env=("GROQ_API_KEY",),
    base_url_env="GROQ_BASE_URL",
    default_base_url="https://api.groq.com",
    batch_limits=BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024),
    batch_discount=0.5,
    # The default window; UNIBATCH_GROQ_COMPLETION_WINDOW asks for a longer one.
    completion_window=24 * 3600,
    finds_lost_batches=True,
    has_realtime=True,
    rules="unibatch.providers.groq.rules:RULES",
    emulator="unibatch.emulators:GroqEmulator",
    emulator_prefix="/groq",
)

__all__ = ["SPEC"]
