"""Webhook delivery: a step that sends one event to one endpoint, signed as the Standard
Webhooks specification says (https://www.standardwebhooks.com/, "Signature scheme").

Headers: `webhook-id` (the event id, the same on every attempt: receivers deduplicate by
it), `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`
(`v1,` + base64 of HMAC-SHA256 over `id.timestamp.body`, keyed by the secret's bytes).
Any 2xx acknowledges the event; anything else, a timeout or a refused connection is
tried again along `webhook_schedule` until `webhook_retry_window` is used up. An endpoint
of a gateway's virtual key is sent to only at a public address, resolved at each attempt
(`unibatch.engine.webhook_hosts`); a name that resolves to a private one fails the attempt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from typing import Any

import httpx

from unibatch.engine.context import Context
from unibatch.engine.schedule import poll_delay
from unibatch.engine.webhook_hosts import pin_public
from unibatch.errors import InputError
from unibatch.store.webhooks import Delivery

log = logging.getLogger("unibatch.engine")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value of `body`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, body: bytes, *, now: float) -> dict[str, str]:
    timestamp = int(now)
    return {
        "content-type": "application/json",
        "user-agent": "unibatch-webhooks",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def next_attempt(schedule: tuple[float, ...], window: float, attempts: int) -> float | None:
    """Seconds to wait after the `attempts`-th failed attempt, or None when the next
    attempt would start past `window` seconds of waiting in all (give up)."""
    waited = sum(poll_delay(schedule, n) for n in range(attempts))
    if waited > window:
        return None
    return poll_delay(schedule, attempts - 1)


async def run_delivery_step(ctx: Context, delivery: Delivery) -> None:
    """Send the event once and record how it went (the lease is released either way)."""
    settings = ctx.settings
    attempts = delivery.attempts + 1
    # The signed timestamp is the wall clock's: receivers compare it with their own clock
    # to refuse replays, whatever clock schedules the retries.
    sent = headers(delivery.secret, delivery.event_id, delivery.payload, now=time.time())
    status: int | None = None
    target: str | httpx.URL = delivery.url
    extensions: dict[str, Any] = {}
    try:
        if delivery.key_id is not None and not settings.webhook_private_hosts:
            target, host, extensions = await pin_public(delivery.url)
            sent |= host
        response = await ctx.webhook_client().post(
            target,
            content=delivery.payload,
            headers=sent,
            timeout=settings.webhook_timeout,
            extensions=extensions,
        )
        status = response.status_code
        error = None if 200 <= status < 300 else f"HTTP {status}"
    except InputError as exc:
        error = exc.detail
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    now = ctx.clock()
    retry_at = None
    if error is not None:
        delay = next_attempt(settings.webhook_schedule, settings.webhook_retry_window, attempts)
        retry_at = None if delay is None else now + delay
        log.warning(
            "webhook %s (%s) to %s: %s; %s",
            delivery.event_id,
            delivery.type,
            delivery.url,
            error,
            "given up" if retry_at is None else f"trying again in {delay:.0f}s",
        )
    await ctx.store.delivery_attempted(
        delivery.id,
        ctx.owner,
        attempts=attempts,
        status=status,
        error=error,
        now=now,
        retry_at=retry_at,
    )
