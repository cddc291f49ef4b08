"""Settings read from the environment.

Provider keys and endpoints use the variables of the official SDKs
(`OPENAI_API_KEY`, `OPENAI_BASE_URL`, ...); everything else is `UNIBATCH_*`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from unibatch.dburl import default_database_url

__all__ = ["DEFAULT_POLL_SCHEDULE", "RealtimeLimit", "Settings", "default_database_url"]

# Early polls come quickly (a small batch can end within seconds, and a poll is one cheap
# GET); later ones spread out for batches that take hours.
# The kinds of queue limit (`queue_limits`), as `unibatch.store.queue` counts them.
QUEUE_LIMIT_KINDS = ("enqueued_tokens", "queued_requests", "concurrent_batches")

DEFAULT_POLL_SCHEDULE = (2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class RealtimeLimit(BaseModel):
    """Limits of the real-time runner for one provider or model; None: no limit."""

    # Frozen: hashable, so the runner keys its shared limiters by it.
    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)
    concurrency: int | None = Field(default=None, ge=1)


class Settings(BaseSettings):
    """Engine settings; every field is `UNIBATCH_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="UNIBATCH_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url)
    # Seconds between polls of one provider job: the n-th poll waits the n-th entry, and
    # the last entry repeats. Given in the environment as "2,5,10,30,60,120,300,600".
    poll_schedule: Annotated[tuple[float, ...], NoDecode] = DEFAULT_POLL_SCHEDULE
    # A job older than this (seconds since submit) is cancelled and finalized as it stands.
    # None: each provider's own completion window plus a margin (OpenAI and Anthropic
    # 24 h, Gemini 48 h, xAI 30 days; see each provider's spec).
    max_age: float | None = None
    # Attempts per request when a batch does not say (`submit --max-attempts`): a request
    # that fails in a retryable way is sent again in a follow-up job until this many.
    max_attempts: int = Field(default=3, ge=1)
    # Seconds before the first follow-up job is sent; each further one waits twice as long
    # as the one before, up to `retry_backoff_max`. A provider that just failed or ran out
    # of time is given a moment before it is asked again.
    retry_backoff: float = Field(default=60.0, ge=0)
    retry_backoff_max: float = Field(default=3600.0, ge=0)
    # How long a worker owns a claimed step before another worker may take it over.
    lease_seconds: float = 120.0
    # Idle sleep of a worker that found nothing due.
    worker_idle: float = 1.0
    # Steps (submit, poll, ingest, finalize) one worker runs at once. Most of a step is
    # waiting on the provider or the database, so many fit in one process; a slow poll or
    # a long ingest then holds up none of the others.
    worker_concurrency: int = Field(default=32, ge=1)
    # Results are written in chunks of this many rows, one transaction each.
    ingest_chunk: int = 2000
    # Jobs with at least this many requests are decoded (downloaded, parsed, priced) in a
    # helper process, on another core than the database writes; 0 turns the helper off.
    ingest_process_from: int = 20_000
    http_timeout: float = 60.0
    # Batch price as a share of the list price, per provider, replacing the adapter's
    # own figure. Given in the environment as "xai=0.5,anthropic=0.5".
    batch_discounts: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)
    # A TOML file of per-model prices (negotiated rates, models the price data lacks),
    # read over genai-prices' (see the README's "Costs" section for its format).
    prices: Path | None = None

    # Real-time runner (`unibatch.engine.runners.realtime`). Limits per provider or per
    # `provider/model` (the more specific wins), as JSON in the environment:
    # '{"local": {"rpm": 600, "tpm": 200000, "concurrency": 4}, "openai/gpt-4o": {"rpm": 500}}'
    realtime_limits: dict[str, RealtimeLimit] = Field(default_factory=dict)
    # Requests in flight at once per job when no limit names a concurrency.
    realtime_concurrency: int = Field(default=8, ge=1)
    # Sends of one request that met a rate limit, overload or timeout before it is
    # stored as a retryable error.
    realtime_max_tries: int = Field(default=8, ge=1)
    # A request found sent but without a result after a crash (its answer was lost with
    # the worker) is sent again (at least once); false stores it as the retryable error
    # `lost_in_crash` instead (at most once: a request is never sent twice).
    realtime_resend_lost: bool = True
    # Providers whose jobs go through the real-time runner at list price although they
    # have a Batch API, e.g. "openai,anthropic"; a provider without one always does.
    realtime_providers: Annotated[frozenset[str], NoDecode] = frozenset()
    # Deadlines (`unibatch.engine.deadline`): time kept free before a batch's deadline on
    # top of the estimated real-time run (cancelling the provider batch, reading its
    # partial results, a slow moment), and the seconds one real-time request is assumed
    # to take while no real-time job of the model has been measured yet.
    deadline_margin: float = Field(default=600.0, ge=0)
    realtime_request_seconds: float = Field(default=30.0, gt=0)
    # Signing secret ("whsec_" + base64) of webhook URLs given per batch without being
    # registered first (`submit --webhook URL`); unset, such a URL is refused (the CLI
    # registers it with a fresh secret and shows that once).
    webhook_secret: str | None = None
    # Seconds a webhook receiver has to answer before the attempt counts as failed.
    webhook_timeout: float = Field(default=15.0, gt=0)
    # Seconds between delivery attempts of one event to one endpoint, as `poll_schedule`
    # ("5,300,1800,7200,18000,36000"); attempts stop once they would start past
    # `webhook_retry_window` seconds (3 days) of waiting, and the delivery is failed.
    webhook_schedule: Annotated[tuple[float, ...], NoDecode] = (
        5.0,
        300.0,
        1800.0,
        7200.0,
        18000.0,
        36000.0,
    )
    webhook_retry_window: float = Field(default=3 * 86400.0, ge=0)
    # Webhook URLs a gateway's virtual keys register may point at private, loopback and
    # link-local addresses. Off (the default), the gateway refuses such URLs from a
    # virtual key, and each delivery to a key's endpoint resolves its host again and is
    # sent only to a public address (`engine.webhook_hosts`). The master key may
    # register any URL either way. Set it for workers too, not only for `serve`.
    webhook_private_hosts: bool = False

    # Queue limits of the providers' Batch APIs, replacing the defaults each provider's
    # spec carries (its published lowest tier): "PROVIDER[/MODEL].KIND=N" pairs, KIND one
    # of enqueued_tokens, queued_requests, concurrent_batches; N=0 removes a limit. E.g.
    # "openai/gpt-4o-mini.enqueued_tokens=2000000,anthropic.queued_requests=100000", or
    # JSON as for `realtime_limits`: '{"openai/gpt-4o-mini": {"enqueued_tokens": 2000000}}'.
    queue_limits: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    # Seconds before a job waiting for room in a provider's queue looks again, at the
    # latest: it looks at once whenever a job of the same provider ends.
    queue_recheck: float = Field(default=30.0, gt=0)

    @field_validator("realtime_providers", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(p for p in value.replace(" ", "").split(",") if p)
        return value

    @field_validator("poll_schedule", "webhook_schedule", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p for p in value.replace(" ", "").split(",") if p]
            return tuple(float(p) for p in parts)
        return value

    @field_validator("batch_discounts", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = [p for p in value.replace(" ", "").split(",") if p]
            parsed: dict[str, float] = {}
            for pair in pairs:
                name, sep, share = pair.partition("=")
                if not sep or not name:
                    raise ValueError(f"batch_discounts entry {pair!r} must be PROVIDER=SHARE")
                parsed[name] = float(share)
            return parsed
        return value

    @field_validator("queue_limits", mode="before")
    @classmethod
    def _queue_limits(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("{"):
                nested = json.loads(value)
                if not isinstance(nested, dict) or not all(
                    isinstance(v, dict) for v in nested.values()
                ):
                    raise ValueError('queue_limits JSON must be {"PROVIDER[/MODEL]": {KIND: N}}')
                return {f"{k}.{kind}": n for k, kv in nested.items() for kind, n in kv.items()}
            parsed: dict[str, object] = {}
            for pair in (p for p in value.replace(" ", "").split(",") if p):
                name, sep, number = pair.partition("=")
                if not sep or not name:
                    raise ValueError(f"queue_limits entry {pair!r} must be PROVIDER[/MODEL].KIND=N")
                parsed[name] = number
            value = parsed
        if isinstance(value, dict):
            for name in value:
                where, _, kind = str(name).rpartition(".")
                if not where or kind not in QUEUE_LIMIT_KINDS:
                    raise ValueError(
                        f"queue_limits entry {name!r}: write PROVIDER[/MODEL].KIND with KIND "
                        f"one of {', '.join(QUEUE_LIMIT_KINDS)}"
                    )
        return value

    @field_validator("queue_limits")
    @classmethod
    def _queue_limits_positive(cls, value: dict[str, int]) -> dict[str, int]:
        for name, number in value.items():
            if number < 0:
                raise ValueError(f"queue_limits entry {name!r} must be 0 (no limit) or more")
        return value

    def realtime_limit(self, provider: str, model: str) -> RealtimeLimit:
        """The limits for `provider/model`: the model's entry over the provider's."""
        general = self.realtime_limits.get(provider) or RealtimeLimit()
        specific = self.realtime_limits.get(f"{provider}/{model}") or RealtimeLimit()
        return RealtimeLimit(
            rpm=specific.rpm or general.rpm,
            tpm=specific.tpm or general.tpm,
            concurrency=specific.concurrency or general.concurrency,
        )

    @field_validator("poll_schedule", "webhook_schedule")
    @classmethod
    def _non_empty(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(v < 0 for v in value):
            raise ValueError("poll_schedule needs at least one non-negative number of seconds")
        return value
