"""A webhook receiver on loopback that checks every request with the `standardwebhooks`
package, as a user's receiver would, and records what it saw.

It answers each request with the next status of `statuses` (then 200), and can hold a
request until the test releases it (`hold`), so a test can act while a delivery is in
flight without guessing how long it takes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: dict[str, Any] | None
    error: str | None
    status: int


@dataclass
class Receiver:
    secret: str
    url: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    # While set, each request waits for `release` before it is answered.
    hold: bool = False
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        if self.hold:
            self.arrived.set()
            self.release.wait(120)
        try:
            verified = Webhook(self.secret).verify(body, headers)
            error = None
        except Exception as exc:  # what the package says is wrong, kept for the assertion
            verified, error = None, f"{type(exc).__name__}: {exc}"
        with self.lock:
            status = self.statuses.pop(0) if self.statuses else 200
            self.received.append(Received(headers, body, verified, error, status))
        return status


@contextmanager
def running_receiver(secret: str) -> Iterator[Receiver]:
    receiver = Receiver(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = receiver.handle(headers, body)
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                pass  # the sender went away (killed mid-delivery)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
