"""A real HTTP receiver on loopback for webhook tests: it records what arrives and answers as told."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from service.webhooks.signing import HEADER, verify


@dataclass
class Arrival:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers `code` after `delay` seconds (both changeable while it runs); `redirect_to` makes it a 302."""

    server: ThreadingHTTPServer | None = None
    code: int = 200
    delay: float = 0.0
    redirect_to: str | None = None
    arrivals: list[Arrival] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/keepwarm?team=1"

    def received(self) -> list[Arrival]:
        with self.lock:
            return list(self.arrivals)

    def verified_events(self, secret: str, *, tolerance: int = 300) -> list[dict]:
        """The events whose signature checks (as a receiver would), in arrival order."""
        return [a.event for a in self.received() if verify(secret, a.headers.get(HEADER, ""), a.body,
                                                           tolerance=tolerance)]


def start_receiver() -> Receiver:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.arrivals.append(Arrival(self.path, dict(self.headers.items()), body))
            if receiver.delay:
                time.sleep(receiver.delay)
            try:
                self.send_response(302 if receiver.redirect_to else receiver.code)
                if receiver.redirect_to:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:  # the client gave up waiting (a timeout test)
                pass

        def log_message(self, *args):
            pass

    receiver.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.server.daemon_threads = True
    threading.Thread(target=receiver.server.serve_forever, daemon=True, name="webhook-receiver").start()
    return receiver


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    """A receiver for one test, shut down after it."""
    receiver = start_receiver()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()

