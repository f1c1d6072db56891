"""/calendar/<token>.ics: a rep's upcoming recontacts and debrief reminders as an iCalendar feed (RFC 5545).

One event per pending email (scheduled or held), at the moment it is due, for 15 minutes and shown as free time.
Its UID is the email's Message-ID, minted once per row, so a calendar that fetches the feed again updates the
event (a postponed email moves) instead of adding a second one; a canceled or sent email is no longer pending, so
its event leaves the feed and the calendar drops it at its next refresh. Its words come from the pages' gettext
catalogs, in the rep's language (else each email's): one feed may speak a language per event.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from icalendar import Calendar, Event, vText
from sqlmodel import Session, select

from service.db import session_scope
from service.languages import LANGUAGES
from service.models import PENDING_STATUSES, Customer, OutboundEmail, Outcome, OutcomeCustomer, Rep
from service.outbox.template_context import date_text, debrief_url, manage_urls, outcome_words
from service.team.feeds import FeedRefused, rep_for_feed
from service.tokens import Signer
from service.web.i18n import DEFAULT_LANGUAGE

bp = Blueprint("feed", __name__, url_prefix="/calendar")

FEED_KINDS = ("recontact", "debrief_reminder")
EVENT_LENGTH = timedelta(minutes=15)
REFRESH = timedelta(hours=1)  # what the feed asks calendar apps for; Google refreshes on its own clock (hours)
MAX_EVENTS = 2000
LINK_LABELS = {"manage": _l("Cancel or postpone"), "debrief": _l("Debrief")}


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
    with _in_language(rep.language):
        calendar.add("x-wr-calname", vText(_text(_("Keepwarm: %(name)s", name=rep.name))))
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
    event = Event()
    event.add("uid", row.message_id.strip("<>"))
    event.add("dtstamp", row.updated_at)
    event.add("last-modified", row.updated_at)
    event.add("dtstart", row.due_at)
    event.add("duration", EVENT_LENGTH)
    with _in_language(language):
        summary = _summary(row, customer)
        lines = [_text(line) for line in _description(row, outcome, customer, rep, language)]
        lines += [f"{LINK_LABELS[name]}: {url}" for name, url in links.items()]
    event.add("summary", _text(summary))
    event.add("description", "\n".join(lines))
    event.add("status", "TENTATIVE" if row.status == "held" else "CONFIRMED")
    event.add("transp", "TRANSPARENT")
    event.add("categories", ["Keepwarm"])
    if links:
        event.add("url", links.get("manage") or links["debrief"])
    return event


def _summary(row: OutboundEmail, customer: Customer | None) -> str:
    who = _who(customer)
    title = (_("Recontact: %(who)s", who=who) if row.kind == "recontact"
             else _("Debrief reminder: %(who)s", who=who))
    return title + (" " + _("(waiting for your confirmation)") if row.status == "held" else "")


def _who(customer: Customer | None) -> str:
    return (customer.name or customer.email) if customer else _("your customer")


def _description(row: OutboundEmail, outcome: Outcome | None, customer: Customer | None, rep: Rep,
                 language: str) -> list[str]:
    """What the email does, the customer, the reasons and the meeting."""
    lines = [_("Keepwarm emails %(who)s at this time, in your name.", who=_who(customer)) if row.kind == "recontact"
             else _("Keepwarm reminds you to write the debrief of this meeting.")]
    if row.status == "held":
        lines.append(_("Nothing goes to the customer until you confirm it."))
    if customer is not None:
        lines.append(_("Customer") + ": " + (f"{customer.name} <{customer.email}>" if customer.name
                                             else customer.email))
    reasons = outcome_words(outcome, language)["reasons_text"] if outcome else ""
    if reasons:
        lines.append(_("Reasons") + f": {reasons}")
    if outcome is not None:
        day = date_text(outcome.meeting_at.astimezone(ZoneInfo(rep.timezone)).date(), language)
        lines.append(_("Meeting") + f": {day}" + (f", “{outcome.meeting_subject}”" if outcome.meeting_subject
                                                   else ""))
    return lines


# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: RFC 5545 allows none in TEXT
# but the tab, and a customer's name comes from whatever a mail header or a note said.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]+")


def _text(value: str) -> str:
    """One line of text for a property: line breaks and control characters become a space (icalendar escapes the
    rest: backslash, comma, semicolon)."""
    return _CONTROL.sub(" ", value)


def _in_language(language: str | None):
    """gettext in `language` for the block; English, the source language, for one we do not write in."""
    return force_locale(language if language in LANGUAGES else DEFAULT_LANGUAGE)
