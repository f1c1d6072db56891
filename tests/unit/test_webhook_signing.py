"""The webhook signature (as a receiver checks it) and the SSRF address rules, without any server."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from service.settings import load_settings
from service.webhooks.addresses import RefusedAddress, check_url, refused_kind
from service.webhooks.signing import endpoint_secret, fingerprint, signature, verify


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body_and_a_receiver_can_check_it():
    body = '{"id":"evt_1","type":"email.sent"}'
    header = signature("whsec_abc", 1767225600, body)
    expected = hmac.new(b"whsec_abc", b"1767225600." + body.encode(), hashlib.sha256).hexdigest()
    assert header == f"t=1767225600,v1={expected}"
    assert verify("whsec_abc", header, body, now=1767225600 + 299)
    assert not verify("whsec_abc", header, body, now=1767225600 + 301)  # a replay after the tolerance
    assert not verify("whsec_abc", header, body.replace("sent", "failed"), now=1767225600)
    assert not verify("whsec_other", header, body, now=1767225600)
    assert not verify("whsec_abc", "garbage", body, now=1767225600)


def test_a_secret_is_derived_from_the_app_key_and_the_salt():
    one = load_settings({"secret_key": "k" * 32}, environ={}, env_file=None)
    two = load_settings({"secret_key": "j" * 32}, environ={}, env_file=None)
    assert endpoint_secret(one, "salt").startswith("whsec_")
    assert endpoint_secret(one, "salt") == endpoint_secret(one, "salt") != endpoint_secret(one, "pepper")
    assert fingerprint(endpoint_secret(one, "salt")) != fingerprint(endpoint_secret(two, "salt"))


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.0.0.1", "private"), ("192.168.1.2", "private"),
    ("172.16.0.1", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"), ("0.0.0.0", "unspecified"), ("240.0.0.1", "reserved"),
    ("::ffff:127.0.0.1", "loopback"), ("100.64.0.1", "non-public"), ("fc00::1", "private"),
    ("93.184.216.34", None), ("2606:4700::1111", None)])
def test_which_addresses_are_refused(address, kind):
    assert refused_kind(address) == kind


@pytest.mark.parametrize("url", ["ftp://example.com/x", "http:///x", "https://user:pw@example.com/x",
                                 "http://example.com:99999/x", "javascript:alert(1)"])
def test_urls_of_the_wrong_form_are_refused(url):
    with pytest.raises(RefusedAddress):
        check_url(url)


def test_a_url_keeps_its_path_and_query():
    assert check_url("https://crm.example.com/hooks?team=1") == ("https", "crm.example.com", 443, "/hooks?team=1")


# ---------------------------------------------------------------------------------------------------- security review


@pytest.mark.parametrize("header", ["t=1767225600,v1=é", "t=1767225600,v1=\u0661\u0662", "t=1767225600,v1"])
def test_a_receiver_refuses_a_header_with_odd_characters_instead_of_crashing(header):
    """hmac.compare_digest raises TypeError on str with non-ASCII characters: a crafted header must be refused."""
    assert verify("whsec_abc", header, "{}", now=1767225600) is False


def test_a_receiver_refuses_a_timestamp_int_alone_would_take_or_two_timestamps():
    body = "{}"
    good = signature("whsec_abc", 1767225600, body)
    mac = good.split("v1=", 1)[1]
    assert verify("whsec_abc", good, body, now=1767225600)
    assert not verify("whsec_abc", f"t=1_767_225_600,v1={mac}", body, now=1767225600)
    assert not verify("whsec_abc", f"t=1,t=1767225600,v1={mac}", body, now=1767225600)


@pytest.mark.parametrize("url", ["http://93.184.216.34/hook\r\nX-Injected: 1", "http://93.184.216.34/a b",
                                 "http://93.184.216.34/a\tb", "http://93.184.216.34/a\x0bb", "http://93.184.216.34/\x00"])
def test_a_url_with_line_breaks_spaces_or_control_characters_is_refused(url):
    """urlsplit would drop "\\r\\n" silently and urllib3 encode the rest: what is posted is not what the admin saw."""
    with pytest.raises(RefusedAddress, match="control characters"):
        check_url(url)


@pytest.mark.parametrize(("address", "kind"), [("2002:7f00:1::", "loopback"), ("2002:a00:1::1", "private"),
                                               ("2002:a9fe:a9fe::", "link-local"), ("2002:5db8:d822::1", None)])
def test_a_6to4_address_is_judged_by_the_ipv4_address_it_carries(address, kind):
    assert refused_kind(address) == kind


def test_the_post_goes_to_the_address_checked_and_the_name_is_resolved_once(monkeypatch):
    """DNS rebinding: a name that resolves to an allowed address for the check and to another one for the
    connection. The connection must go to the address checked; the host name is looked up once."""
    import socket
    import threading

    from service.webhooks import addresses
    from service.webhooks.receiver import post

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port, got = server.getsockname()[1], []

    def answer():
        conn, _ = server.accept()
        got.append(conn.recv(65536))
        conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    real, asked = socket.getaddrinfo, []

    def rebinding(host, *args, **kwargs):
        if host == "rebind.example":
            asked.append(host)  # first the receiver's address, then an address that must never be reached
            return real("127.0.0.1" if len(asked) == 1 else "192.0.2.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    target = addresses.resolve(f"http://rebind.example:{port}/hook", allow_private=True)
    answer_ = post(target, b"{}", {"Content-Type": "application/json"}, timeout=5)
    server.close()
    assert answer_.code == 204 and asked == ["rebind.example"]
    assert f"Host: rebind.example:{port}\r\n".encode() in got[0]


def test_a_name_with_one_private_address_among_public_ones_is_refused(monkeypatch):
    import socket

    from service.webhooks import addresses

    def mixed(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ("93.184.216.34", "10.0.0.7")]

    monkeypatch.setattr(socket, "getaddrinfo", mixed)
    with pytest.raises(RefusedAddress, match="10.0.0.7, a private address"):
        addresses.resolve("https://mixed.example/hook", allow_private=False)
