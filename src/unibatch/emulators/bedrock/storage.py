"""The S3 the Bedrock emulator reads records from and writes results to: moto's server
mode, a real S3-compatible HTTP server, so clients use their ordinary S3 code.

One server per process, started on first use (importing moto takes a second or two, which
emulator users that never touch Bedrock should not pay).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from starlette.concurrency import run_in_threadpool

REGION = "us-east-1"
ACCOUNT = "123456789012"
# Credentials moto accepts (it checks no signature); the emulator's clients send these.
CREDENTIALS = {"aws_access_key_id": "emulated", "aws_secret_access_key": "emulated"}
# The bucket a fresh server offers, so `unibatch emulate` works without creating one.
BUCKET = "unibatch-emulated"

_lock = threading.Lock()
_servers: dict[str, tuple[Any, str]] = {}


class StorageMissing(RuntimeError):
    """moto is not installed: the emulator cannot offer S3."""


def s3_url(host: str = "127.0.0.1") -> str:
    """The URL of this process's S3 server on `host`, started on first call."""
    with _lock:
        found = _servers.get(host)
        if found is None:
            try:
                from moto.server import ThreadedMotoServer
            except ImportError:
                raise StorageMissing(
                    'the Bedrock emulator stores data in moto\'s S3: pip install "moto[server]"'
                ) from None
            # Its request log would interleave with the emulator's own output.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
            server = ThreadedMotoServer(ip_address=host, port=0, verbose=False)
            server.start()
            port = server.get_host_and_port()[1]
            public = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            found = (server, f"http://{public}:{port}")
            _servers[host] = found
            client(found[1]).create_bucket(Bucket=BUCKET)
        return found[1]


def client(url: str) -> Any:
    """A boto3 S3 client of the emulator's storage."""
    import boto3

    return boto3.client("s3", endpoint_url=url, region_name=REGION, **CREDENTIALS)


async def started(host: str = "127.0.0.1") -> str:
    """`s3_url` without blocking the event loop while moto starts."""
    return await run_in_threadpool(s3_url, host)
