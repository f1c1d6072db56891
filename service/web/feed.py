"""/calendar/<token>.ics: a rep's upcoming recontacts and debrief reminders as an iCalendar feed (RFC 5545).

One event per pending email (scheduled or held), at the moment it is due, for 15 minutes and shown as free time.
Its UID is the email's Message-ID, minted once per row, so a calendar that fetches the feed again updates the
event (a postponed email moves) instead of adding a second one; a canceled or sent email is no longer pending, so
its event leaves the feed and the calendar drops it at its next refresh.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app
from icalendar import Calendar, Event, vText
from sqlmodel import Session, select

from service.db import session_scope
from service.models import PENDING_STATUSES, Customer, OutboundEmail, Outcome, OutcomeCustomer, Rep
from service.outbox.template_context import date_text, debrief_url, manage_urls, outcome_words
from service.team.feeds import FeedRefused, rep_for_feed
from service.tokens import Signer

bp = Blueprint("feed", __name__, url_prefix="/calendar")

FEED_KINDS = ("recontact", "debrief_reminder")
EVENT_LENGTH = timedelta(minutes=15)
REFRESH = timedelta(hours=1)  # what the feed asks calendar apps for; Google refreshes on its own clock (hours)
MAX_EVENTS = 2000
WORDS = {
    "en": {"recontact": "Recontact: {who}", "debrief_reminder": "Debrief reminder: {who}",
           "held": " (waiting for your confirmation)", "customer": "Customer", "reasons": "Reasons",
           "meeting": "Meeting", "recontact_what": "Keepwarm emails {who} at this time, in your name.",
           "debrief_what": "Keepwarm reminds you to write the debrief of this meeting.",
           "held_what": "Nothing goes to the customer until you confirm it.",
           "manage": "Cancel or postpone", "debrief": "Debrief", "calendar": "Keepwarm: {name}",
           "nobody": "your customer"},
    "it": {"recontact": "Ricontatto: {who}", "debrief_reminder": "Promemoria debrief: {who}",
           "held": " (in attesa della tua conferma)", "customer": "Cliente", "reasons": "Motivi",
           "meeting": "Incontro", "recontact_what": "Keepwarm scrive a {who} a quest'ora, a tuo nome.",
           "debrief_what": "Keepwarm ti ricorda di scrivere il debrief di questo incontro.",
           "held_what": "Al cliente non parte nulla finché non confermi.",
           "manage": "Annulla o rimanda", "debrief": "Debrief", "calendar": "Keepwarm: {name}",
           "nobody": "il tuo cliente"},
}


@bp.get("/<token>.ics")
def feed(token: str):
    """The feed, or 404 (not ours) / 410 (revoked): the URL is the rep's key, as a debrief link is."""
    services = current_app.config["KEEPWARM"]
    signer = Signer(services.settings)
    with session_scope(services.engine) as session:
        try:
            rep = rep_for_feed(session, signer, token)
        except FeedRefused as refused:
            abort(refused.status)
        body = rep_calendar(session, signer, rep, now=datetime.now(UTC)).to_ical()
    response = Response(body, headers={"Content-Type": "text/calendar; charset=utf-8"})
    response.headers["Content-Disposition"] = 'inline; filename="keepwarm.ics"'
    response.headers["Cache-Control"] = "no-store"  # a revoked feed must stop at once, not when a cache expires
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def rep_calendar(session: Session, signer: Signer, rep: Rep, *, now: datetime) -> Calendar:
    """The rep's pending recontacts and debrief reminders, in the rep's language (else each email's)."""
    calendar = Calendar()
    calendar.add("prodid", "-//Keepwarm//Recontacts and debrief reminders//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    # X- properties are not escaped as TEXT by icalendar: a CR in a name would start a property of its own, an LF
    # stop the feed (an assertion). vText escapes, and _text takes the control characters out first.
    calendar.add("x-wr-calname", vText(_text(_words(rep.language)["calendar"].format(name=rep.name))))
    calendar.add("x-wr-timezone", vText(_text(rep.timezone)))
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", REFRESH)
    rows = pending_rows(session, rep)
    outcomes, customers = _outcomes(session, rows), _customers(session, rows)
    link_days = current_app.config["KEEPWARM"].settings.debrief_link_days
    for row in rows:
        outcome = outcomes.get(row.outcome_id)
        customer = customers.get(row.customer_id) or customers.get(("first", row.outcome_id))
        links = _links(signer, row, outcome, rep, now, link_days)
        calendar.add_component(_event(row, outcome, customer, rep, links))
    return calendar


def pending_rows(session: Session, rep: Rep) -> list[OutboundEmail]:
    return list(session.exec(select(OutboundEmail).where(
        OutboundEmail.rep_id == rep.id, OutboundEmail.kind.in_(FEED_KINDS),
        OutboundEmail.status.in_(PENDING_STATUSES)).order_by(OutboundEmail.due_at, OutboundEmail.id)
        .limit(MAX_EVENTS)))


def _outcomes(session: Session, rows: list[OutboundEmail]) -> dict[int, Outcome]:
    ids = {row.outcome_id for row in rows if row.outcome_id}
    return {o.id: o for o in session.exec(select(Outcome).where(Outcome.id.in_(ids)))} if ids else {}


def _customers(session: Session, rows: list[OutboundEmail]) -> dict:
    """Customers by id, and a debrief reminder's meeting's first customer under ("first", outcome id)."""
    reminded = {row.outcome_id for row in rows if row.customer_id is None and row.outcome_id}
    firsts = {}
    if reminded:
        links = session.exec(select(OutcomeCustomer).where(OutcomeCustomer.outcome_id.in_(reminded))
                             .order_by(OutcomeCustomer.outcome_id, OutcomeCustomer.customer_id))
        for link in links:
            firsts.setdefault(link.outcome_id, link.customer_id)
    ids = {row.customer_id for row in rows if row.customer_id} | set(firsts.values())
    found = {c.id: c for c in session.exec(select(Customer).where(Customer.id.in_(ids)))} if ids else {}
    return {**found, **{("first", outcome_id): found.get(cid) for outcome_id, cid in firsts.items()}}


def _links(signer: Signer, row: OutboundEmail, outcome: Outcome | None, rep: Rep, now: datetime,
           link_days: int) -> dict:
    """The manage page for a recontact; the debrief while its link would still work (the feed must not make a
    debrief link outlive KEEPWARM_DEBRIEF_LINK_DAYS)."""
    links = {"manage": manage_urls(signer, row.id, rep.id)["postpone"]} if row.kind == "recontact" else {}
    if outcome is not None and now - outcome.created_at < timedelta(days=link_days):
        links["debrief"] = debrief_url(signer, outcome, rep)
    return links


def _event(row: OutboundEmail, outcome: Outcome | None, customer: Customer | None, rep: Rep, links: dict) -> Event:
    language = rep.language or row.language
    words = _words(language)
    event = Event()
    event.add("uid", row.message_id.strip("<>"))
    event.add("dtstamp", row.updated_at)
    event.add("last-modified", row.updated_at)
    event.add("dtstart", row.due_at)
    event.add("duration", EVENT_LENGTH)
    held = words["held"] if row.status == "held" else ""
    event.add("summary", _text(words[row.kind].format(who=_who(customer, words)) + held))
    event.add("description", "\n".join([_text(line) for line in _description(row, outcome, customer, rep, language)]
                                       + [f"{words[name]}: {url}" for name, url in links.items()]))
    event.add("status", "TENTATIVE" if row.status == "held" else "CONFIRMED")
    event.add("transp", "TRANSPARENT")
    event.add("categories", ["Keepwarm"])
    if links:
        event.add("url", links.get("manage") or links["debrief"])
    return event


def _who(customer: Customer | None, words: dict) -> str:
    return (customer.name or customer.email) if customer else words["nobody"]


def _description(row: OutboundEmail, outcome: Outcome | None, customer: Customer | None, rep: Rep,
                 language: str) -> list[str]:
    """What the email does, the customer, the reasons and the meeting."""
    words = _words(language)
    lines = [words["recontact_what" if row.kind == "recontact" else "debrief_what"].format(who=_who(customer, words))]
    if row.status == "held":
        lines.append(words["held_what"])
    if customer is not None:
        lines.append(f"{words['customer']}: " + (f"{customer.name} <{customer.email}>" if customer.name
                                                 else customer.email))
    reasons = outcome_words(outcome, language)["reasons_text"] if outcome else ""
    if reasons:
        lines.append(f"{words['reasons']}: {reasons}")
    if outcome is not None:
        day = date_text(outcome.meeting_at.astimezone(ZoneInfo(rep.timezone)).date(), language)
        lines.append(f"{words['meeting']}: {day}" + (f", “{outcome.meeting_subject}”" if outcome.meeting_subject
                                                      else ""))
    return lines


# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: RFC 5545 allows none in TEXT
# but the tab, and a customer's name comes from whatever a mail header or a note said.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]+")


def _text(value: str) -> str:
    """One line of text for a property: line breaks and control characters become a space (icalendar escapes the
    rest: backslash, comma, semicolon)."""
    return _CONTROL.sub(" ", value)


def _words(language: str | None) -> dict:
    return WORDS.get(language or "en", WORDS["en"])
