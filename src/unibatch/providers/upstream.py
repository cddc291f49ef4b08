"""What our messages may say about a provider call: the provider's own path and message,
never the URL we reach the provider at.

Provider errors end up where a gateway's key holders read them (a batch's `errors`, the
error message of each request of a failed job). The base URL is ours, not the
provider's: an internal proxy, an emulator on loopback, credentials in its userinfo. So a
message names a call by the provider's path (`POST /v1/messages/batches`) and any URL of
ours inside a provider's answer is cut down to that path too.

>>> up = Upstream("http://user:pw@10.0.0.5:8080/anthropic", "https://api.anthropic.com")
>>> up.where("GET", "v1/messages/batches/msgbatch_1?limit=5")
'GET /v1/messages/batches/msgbatch_1'
>>> up.scrub("Invalid URL (POST /anthropic/v1/x) at http://10.0.0.5:8080/anthropic/v1/x")
'Invalid URL (POST /v1/x) at /v1/x'
"""

from __future__ import annotations

import re

import httpx


class Upstream:
    """One provider's base URL, as our messages must not show it."""

    def __init__(self, base_url: str, default_base_url: str) -> None:
        self._base = httpx.URL(base_url.rstrip("/") + "/")
        # The provider's own path prefix (OpenAI's `/v1`) stays; what the base URL puts
        # before it (a proxy's or the emulator's mount, `/openai`) is ours.
        own = httpx.URL(default_base_url).path.rstrip("/")
        path = self._base.path.rstrip("/")
        prefix = path[: -len(own)] if own and path.endswith(own) else path
        host = re.escape(self._base.netloc.decode("ascii"))
        # Any scheme, with or without userinfo, then our path prefix when it follows.
        self._url = re.compile(
            rf"[A-Za-z][A-Za-z0-9+.-]*://(?:[^/\s@]*@)?{host}(?:{re.escape(prefix)}(?=/|\b))?"
        )
        # The prefix alone, where a path starts (`POST /openai/v1/...`).
        self._prefix = re.compile(rf"(?<![\w/.-]){re.escape(prefix)}(?=/)") if prefix else None

    def scrub(self, text: str) -> str:
        """`text` with every URL of ours reduced to the provider's path."""
        text = self._url.sub("", text)
        return self._prefix.sub("", text) if self._prefix is not None else text

    def where(self, method: str, url: str | httpx.URL) -> str:
        """`METHOD /provider/path` of a call, relative or absolute; no host, no query
        (Gemini's upload URLs carry upload ids there)."""
        full = self._base.join(url).copy_with(query=None, fragment=None)
        return f"{method} {self.scrub(str(full)) or '/'}"
