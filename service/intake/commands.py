"""Plus-address commands: `followup+lost+3m@…` tells Keepwarm what to do without any prose."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

from service.notes import Commands

_OUTCOMES = {"lost": "lost", "won": "won", "unknown": "unknown", "perso": "lost", "vinto": "won"}
_DELAY = re.compile(r"^\d{1,3}[dwm]$")


def is_intake_address(address: str, intake_address: str) -> bool:
    """The intake address itself or any of its plus variants."""
    local, _, domain = intake_address.lower().partition("@")
    their_local, _, their_domain = address.lower().partition("@")
    return their_domain == domain and their_local.split("+", 1)[0] == local


def read_commands(addresses: Iterable[str], intake_address: str) -> Commands | None:
    """The commands carried by any plus variant of the intake address, or None when there are none."""
    tokens = [t for a in addresses if is_intake_address(a, intake_address) for t in a.partition("@")[0].split("+")[1:]]
    if not tokens:
        return None
    outcome, recontact, noemail = None, None, False
    for token in (t.strip().lower() for t in tokens):
        if token in _OUTCOMES:
            outcome = _OUTCOMES[token]
        elif token in {"noemail", "nomail", "silent"}:
            noemail = True
        elif _DELAY.match(token) or _is_iso_date(token):
            recontact = token
    return Commands(outcome=outcome, recontact=recontact, noemail=noemail)


def _is_iso_date(token: str) -> bool:
    try:
        date.fromisoformat(token)
    except ValueError:
        return False
    return True
