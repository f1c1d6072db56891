"""Talking to the tests' private servers: a JSON endpoint in a thread (the token endpoints, a model's chat API), an
IMAP client over TLS that trusts the private CA, and `keepwarm check` run against them in a process of its own."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from imapclient import IMAPClient

from tests.private_ca import PrivateCA


@dataclass(frozen=True)
class JsonRequest:
    method: str
    path: str
    headers: Message
    body: bytes

    def form(self) -> dict[str, str]:
        """The body as an HTML form (what token endpoints are sent), one value per field."""
        return {name: values[0] for name, values in parse_qs(self.body.decode()).items()}

    def json(self):
        return json.loads(self.body)


# What the endpoint answers: an HTTP status and a JSON body, or None for a status with no body at all.
Answer = Callable[[JsonRequest], tuple[int, object | None]]


class JsonServer:
    """`answer` behind GET and POST on 127.0.0.1, over HTTPS with `tls` (a server context), until `close`."""

    def __init__(self, answer: Answer, *, tls: ssl.SSLContext | None = None):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(answer))
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.httpd.server_port}"
        # shutdown() waits for serve_forever's next poll: half a second a test at its default interval
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(answer: Answer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self._reply("GET")

        def do_POST(self):  # noqa: N802
            self._reply("POST")

        def _reply(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, reply = answer(JsonRequest(method, self.path, self.headers, body))
            self.send_response(status)
            if reply is None:
                self.end_headers()
                return
            data = json.dumps(reply).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return Handler


@contextmanager
def imaps_login(port: int, ca: PrivateCA, user: str, password: str) -> Iterator[IMAPClient]:
    """An IMAP client on 127.0.0.1 over implicit TLS, verifying the server with the private CA, logged in."""
    with IMAPClient("127.0.0.1", port=port, ssl_context=ca.client_context()) as client:
        client.login(user, password)
        yield client


def keepwarm_check(folder: Path, **variables) -> subprocess.CompletedProcess:
    """`keepwarm check` with these KEEPWARM_* variables alone (none inherited), its instance in `folder`."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KEEPWARM_")},
           "KEEPWARM_INSTANCE_DIR": str(folder), "KEEPWARM_SECRET_KEY": "test-secret-0123456789abcdef",
           **{k: str(v) for k, v in variables.items()}}
    return subprocess.run([sys.executable, "-m", "service.cli", "check"], env=env, capture_output=True, text=True,
                          timeout=120, cwd=folder)
