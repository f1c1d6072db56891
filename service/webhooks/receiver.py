"""Posting one delivery to the receiver: to the address checked (pinned), never following a redirect.

urllib3 directly rather than requests: a request can go to the checked IP address while the Host header and, over
TLS, the server name and the certificate check stay the URL's host name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError

from service.webhooks.addresses import Target

EXCERPT = 500  # characters of the receiver's answer kept for the delivery log
USER_AGENT = "Keepwarm-Webhooks/1"


@dataclass(frozen=True)
class Answer:
    """What came of one post: the status code (None when none came back), a note, and how long it took."""

    code: int | None
    excerpt: str
    error: str | None
    duration_ms: int


def post(target: Target, body: bytes, headers: dict[str, str], *, timeout: float) -> Answer:
    """POST `body` to the target, trying its addresses in turn while one refuses the connection."""
    started = time.monotonic()
    error: Exception | None = None
    for address in target.addresses:
        try:
            return _post_to(target, address, body, headers, timeout, started)
        except NewConnectionError as refused:  # this address is down: the host may have another
            error = refused
        except (HTTPError, OSError) as failed:  # a timeout, a reset, a TLS refusal: the receiver was reached
            error = failed
            break
    return Answer(None, "", _describe(error), _elapsed(started))


def _post_to(target: Target, address: str, body: bytes, headers: dict[str, str], timeout: float,
             started: float) -> Answer:
    pool = _pool(target, address, timeout)
    try:
        response = pool.urlopen("POST", target.path, body=body, redirect=False, retries=False,
                                preload_content=False, assert_same_host=False,
                                headers={**headers, "Host": target.host_header, "User-Agent": USER_AGENT})
        try:
            excerpt = response.read(EXCERPT * 4, decode_content=True)[:EXCERPT * 4]
        finally:
            response.release_conn()
        return Answer(response.status, excerpt.decode("utf-8", "replace")[:EXCERPT], None, _elapsed(started))
    finally:
        pool.close()


def _pool(target: Target, address: str, timeout: float) -> urllib3.HTTPConnectionPool:
    limit = urllib3.Timeout(total=timeout)
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(address, target.port, timeout=limit, maxsize=1, retries=False,
                                           server_hostname=target.host, assert_hostname=target.host,
                                           cert_reqs="CERT_REQUIRED")
    return urllib3.HTTPConnectionPool(address, target.port, timeout=limit, maxsize=1, retries=False)


def _elapsed(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _describe(error: Exception | None) -> str:
    if error is None:
        return "no address to try"
    text = str(error)
    if "timed out" in text.lower() or "timeout" in type(error).__name__.lower():
        return f"timed out: {text}"[:500]
    return f"{type(error).__name__}: {text}"[:500]
