"""Amazon Bedrock batch inference: JSONL records in S3, a model invocation job, JSONL
results back in S3.

Documented at https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference.html
(and its pages on data, results and quotas) and in botocore's service model
(`botocore/data/bedrock/2023-04-20/service-2.json`). The record and size quotas are per
model and account in Service Quotas; the defaults here are the commonly published ones:
at least 100 and at most 50,000 records per job, 1 GB per input file; batch costs half
the on-demand price. Needs the `bedrock` extra (`pip install "unibatch[bedrock]"`).
"""

from unibatch.providers.spec import BatchLimits, ProviderSpec

SPEC = ProviderSpec(
    name="bedrock",
    adapter="unibatch.providers.bedrock.adapter:BedrockProvider",
    endpoints=frozenset({"/v1/chat/completions"}),
    # Credentials come from the standard AWS chain (these variables, a profile, an
    # instance role), so no key is required up front.
    key_env=("AWS_ACCESS_KEY_ID",),
    key_required=False,
    # boto3's per-service endpoint variable; without it the region picks the host.
    base_url_env="AWS_ENDPOINT_URL_BEDROCK",
    default_base_url="https://bedrock.{region}.amazonaws.com",
    batch_limits=BatchLimits(max_requests=50_000, max_bytes=1024 * 1024 * 1024, min_requests=100),
    batch_discount=0.5,
    # Sent as `timeoutDurationInHours` (24 to 168).
    completion_window=24 * 3600,
    finds_lost_batches=True,
    has_realtime=False,
    rules="unibatch.providers.bedrock.rules:RULES",
    emulator="unibatch.emulators:BedrockEmulator",
    emulator_prefix="/bedrock",
)

__all__ = ["SPEC"]
