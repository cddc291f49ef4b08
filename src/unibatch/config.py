"""Settings read from the environment.

Provider keys and endpoints use the variables of the official SDKs
(`OPENAI_API_KEY`, `OPENAI_BASE_URL`, ...); everything else is `UNIBATCH_*`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from unibatch.dburl import default_database_url

__all__ = ["DEFAULT_POLL_SCHEDULE", "Settings", "default_database_url"]

# Early polls come quickly (a small batch can end within seconds, and a poll is one cheap
# GET); later ones spread out for batches that take hours.
DEFAULT_POLL_SCHEDULE = (2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


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

    @field_validator("poll_schedule", mode="before")
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

    @field_validator("poll_schedule")
    @classmethod
    def _non_empty(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(v < 0 for v in value):
            raise ValueError("poll_schedule needs at least one non-negative number of seconds")
        return value
