"""A rep's calendar feed link: (rep id, calendar key) signed without a date, so it never expires like a one-week
link; revoking the feed draws a new key, and every URL signed with the old one is refused from then on."""

from __future__ import annotations

import secrets

from sqlmodel import Session

from service.models import Rep
from service.tokens import Signer, TokenError

PURPOSE = "calendar"


class FeedRefused(Exception):
    """A feed URL that serves nothing: 404 when it is not ours (forged, tampered, unknown or disabled rep), 410 when
    it was revoked (calendar apps stop asking for a feed that is gone)."""

    def __init__(self, status: int, why: str):
        super().__init__(why)
        self.status = status


def feed_token(signer: Signer, rep: Rep) -> str:
    """The same token for as long as the rep's key stands (a rep never given a key signs the empty one)."""
    return signer.make_lasting(PURPOSE, {"rep": rep.id, "key": rep.calendar_key or ""})


def feed_url(signer: Signer, rep: Rep) -> str:
    """The feed's https (or http) URL: Google Calendar and Outlook subscribe to it as it is."""
    return f"{signer.url('/calendar', feed_token(signer, rep))}.ics"


def webcal_url(url: str) -> str:
    """The same feed as a webcal:// link, which Apple Calendar (and Outlook) open as a subscription."""
    return "webcal://" + url.split("://", 1)[1]


def rep_for_feed(session: Session, signer: Signer, token: str) -> Rep:
    """The rep whose feed the token opens, or FeedRefused."""
    try:
        payload = signer.read_lasting(PURPOSE, token)
    except TokenError:
        raise FeedRefused(404, "not a feed of ours") from None
    rep_id = payload.get("rep") if isinstance(payload, dict) else None
    rep = session.get(Rep, rep_id) if isinstance(rep_id, int) and not isinstance(rep_id, bool) else None
    if rep is None or not rep.active:
        raise FeedRefused(404, "no such rep, or the rep is disabled")
    if not secrets.compare_digest(str(payload.get("key", "")), rep.calendar_key or ""):
        raise FeedRefused(410, "this feed was revoked")
    return rep


def revoke_feed(rep: Rep) -> None:
    """A new key for the rep (the caller commits): the old URLs answer 410, the new one is feed_url's."""
    rep.calendar_key = secrets.token_urlsafe(18)
