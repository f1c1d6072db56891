"""Sender authentication: what the receiving MTA verified (SPF, DKIM, DMARC) about the domain in a message's From.

Keepwarm verifies no signature itself: the MTA that received the message did, and wrote its verdict in an
Authentication-Results header (RFC 8601). Anyone can write such a header, so only the ones stamped with a trusted
authserv-id count; with no id configured, only the topmost header does, the one the last MTA (ours) added.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import authres

from service.intake.mime import Letter

logger = logging.getLogger(__name__)

# Exchange Online writes its header without an authserv-id; it is parsed under this name and trusted only as the
# topmost header (an empty id cannot be listed in KEEPWARM_TRUSTED_AUTHSERV_IDS).
_NAMELESS = "authserv-id.invalid"
_STARTS_WITH_RESULT = re.compile(r"^\s*[a-z][\w-]*\s*=", re.I)
_FOLD = re.compile(r"\r?\n[ \t]*")


@dataclass(frozen=True)
class SenderCheck:
    """`pass`, `fail` or `none` (no trusted result, or none that decides), and the results it rests on."""

    verdict: str
    detail: str


def check_sender(letter: Letter, trusted_ids: tuple[str, ...]) -> SenderCheck:
    """The trusted Authentication-Results judged for the From domain."""
    domain = letter.sender.email.rpartition("@")[2].lower() if letter.sender else ""
    header = _trusted_header(letter, trusted_ids)
    if header is None:
        return SenderCheck("none", "no trusted Authentication-Results header")
    verdict, why = _judge(header.results, domain)
    by = f"by {header.authserv_id}" if header.authserv_id != _NAMELESS else "without authserv-id"
    return SenderCheck(verdict, f"{why} (Authentication-Results {by})")


def refusal(check: SenderCheck, *, require_pass: bool) -> str | None:
    """Why a rep's mail is refused, or None: a fail never passes; with `require_pass` only a pass does."""
    if check.verdict == "fail":
        return check.detail
    if require_pass and check.verdict != "pass":
        return f"{check.detail}; KEEPWARM_REQUIRE_SENDER_AUTH asks for a pass"
    return None


def _trusted_header(letter: Letter, trusted_ids: tuple[str, ...]):
    """The topmost header whose authserv-id is trusted; with none configured, the topmost header alone."""
    headers = (_parse(str(value)) for value in letter.message.get_all("Authentication-Results") or [])
    if not trusted_ids:
        return next(headers, None)
    return next((h for h in headers if h is not None and h.authserv_id.lower() in trusted_ids), None)


def _parse(value: str):
    """One header value parsed, or None when it is not RFC 8601 (then it proves nothing)."""
    value = _FOLD.sub(" ", value).strip()
    if _STARTS_WITH_RESULT.match(value):
        value = f"{_NAMELESS}; {value}"
    try:
        return authres.AuthenticationResultsHeader.parse_value(value)
    except authres.AuthResError as error:
        logger.info("unreadable Authentication-Results %r: %s", value[:200], error)
        return None


def _judge(results, domain: str) -> tuple[str, str]:
    """DMARC first; without a DMARC verdict, SPF and DKIM aligned with the From domain."""
    dmarc = [r for r in results if r.method == "dmarc" and _about(_prop(r, "header", "from"), domain, True)]
    spf = [r for r in results if r.method == "spf" and _about(_prop(r, "smtp", "mailfrom"), domain, True)]
    dkim_pass = [r for r in results if r.method == "dkim" and r.result == "pass" and _about(_signer(r), domain)]
    for verdict in ("fail", "pass"):
        if decided := [r for r in dmarc if r.result == verdict]:
            return verdict, _words(decided)
    if (spf_failed := [r for r in spf if r.result == "fail"]) and not dkim_pass:
        return "fail", f"{_words(spf_failed)}, and no dkim=pass for {domain}"
    if passed := [r for r in spf + dkim_pass if r.result == "pass"]:
        return "pass", _words(passed)
    return "none", _words(results) or "no results"


def _prop(result, ptype: str, name: str) -> str | None:
    found = next((p.value for p in result.properties if p.type == ptype and p.name == name), None)
    return found.rpartition("@")[2].lower().strip() if found else None


def _signer(result) -> str | None:
    """The signing domain of a DKIM result: header.d, else the domain of header.i (Gmail writes only that)."""
    return _prop(result, "header", "d") or _prop(result, "header", "i")


def _about(other: str | None, domain: str, unnamed_counts: bool = False) -> bool:
    """Whether a result's domain is the From domain (relaxed alignment: one a subdomain of the other)."""
    if not other:
        return unnamed_counts
    return "." in other and (other == domain or domain.endswith("." + other) or other.endswith("." + domain))


def _words(results) -> str:
    return "; ".join(str(r) for r in results)
