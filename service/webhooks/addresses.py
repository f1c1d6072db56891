"""Where a webhook may post: http(s) URLs whose host resolves only to public addresses (no SSRF into the LAN).

The host is resolved once per delivery and the connection goes to the address checked (receiver.py pins it), so a
DNS answer that changes between the check and the connection cannot point the post at an internal service.
Loopback, private, link-local, shared (CGNAT), multicast, reserved and unspecified addresses are refused unless
KEEPWARM_WEBHOOK_ALLOW_PRIVATE is set.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

SCHEMES = {"http": 80, "https": 443}


class RefusedAddress(ValueError):
    """The URL may not be posted to (its scheme, its form, or where its host resolves)."""


class Unresolved(RefusedAddress):
    """The host name does not resolve now: refused when registering, retried when delivering (a resolver's
    hiccup must not lose an event)."""


@dataclass(frozen=True)
class Target:
    """A URL taken apart, with the addresses its host resolved to (every one allowed)."""

    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == SCHEMES[self.scheme] else f"{host}:{self.port}"


def check_url(url: str) -> tuple[str, str, int, str]:
    """The URL's scheme, host, port and path, or RefusedAddress saying what is wrong with its form."""
    url = url.strip()
    # urlsplit silently drops tabs and line breaks, and urllib3 percent-encodes what else is odd in a path: the URL
    # posted to would not be the one the admin saw. Refused instead, whatever the character.
    if any(c.isspace() or not c.isprintable() for c in url):
        raise RefusedAddress("no spaces, line breaks or control characters in the URL (percent-encode them)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise RefusedAddress(f"not a URL: {error}") from None
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise RefusedAddress("use an http:// or https:// URL with a host name")
    if parts.username or parts.password:
        raise RefusedAddress("no user or password in the URL: receivers check the signature instead")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or SCHEMES[parts.scheme], path


def resolve(url: str, *, allow_private: bool) -> Target:
    """Check and resolve the URL; RefusedAddress when it is malformed, unknown, or reaches a refused address."""
    scheme, host, port, path = check_url(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise Unresolved(f"{host} does not resolve ({error})") from None
    addresses = tuple(dict.fromkeys(info[4][0] for info in infos))
    if not allow_private:
        for address in addresses:
            kind = refused_kind(address)
            if kind:
                raise RefusedAddress(f"{host} resolves to {address}, a {kind} address (set "
                                     "KEEPWARM_WEBHOOK_ALLOW_PRIVATE=true to allow receivers on your own network)")
    return Target(scheme, host, port, path, addresses)


def refused_kind(address: str) -> str | None:
    """Why this address is not public ("loopback", "private"…), or None for a public one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv6Address) and ip.sixtofour:  # 2002::/16 carries an IPv4 address (6to4)
        embedded = refused_kind(str(ip.sixtofour))
        if embedded:
            return embedded
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-public"
