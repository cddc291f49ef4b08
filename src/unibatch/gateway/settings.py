"""Gateway settings, from `UNIBATCH_*` variables like the engine's."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_files_dir() -> Path:
    return Path(platformdirs.user_data_dir("unibatch")) / "files"


class GatewaySettings(BaseSettings):
    """`UNIBATCH_MASTER_KEY`, `UNIBATCH_FILES_DIR`, `UNIBATCH_MAX_BODY_BYTES`,
    `UNIBATCH_HEADER_TIMEOUT`, ..."""

    model_config = SettingsConfigDict(env_prefix="UNIBATCH_", extra="ignore")

    # Manages virtual keys and sees every file and batch. Unset: only virtual keys work.
    master_key: SecretStr | None = None
    # Uploaded request files, one file per id.
    files_dir: Path = Field(default_factory=default_files_dir)
    # Larger request bodies (uploads, JSON batches) are refused with 413. OpenAI's own
    # batch input limit is 200 MB.
    max_body_bytes: int = 200 * 1024 * 1024
    # Output tokens assumed, for the budget estimate, when a request sets no max_tokens.
    default_max_tokens: int = 1024
    # Seconds a client has to send a request's line and headers (`unibatch serve`); a
    # connection that sends nothing, or only part of them, is closed after this long.
    header_timeout: float = Field(default=15.0, gt=0)
    # `GET /metrics` (Prometheus, no key asked: counts only, see `routes_metrics`).
    metrics: bool = True
    # Days an uploaded file is kept (OpenAI's `expires_at`); after that it is gone, and a
    # sweep deletes it from disk every `file_sweep_seconds`. 0: kept until deleted.
    file_expiry_days: float = Field(default=30.0, ge=0)
    file_sweep_seconds: float = Field(default=3600.0, gt=0)
