"""What a template sees: the customer, the rep, the meeting, the outcome in words, and the signed links."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, func, select

from service.models import Customer, OutboundEmail, Outcome, Rep
from service.settings import Settings
from service.team.feeds import feed_url
from service.tokens import Signer

MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "it": ("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre", "ottobre",
           "novembre", "dicembre"),
}
REASON_WORDS = {
    "en": {"budget": "budget", "timing": "timing", "consult": "others to consult", "competitor": "a competitor",
           "no_need": "no current need", "price": "price", "unconvinced": "not convinced yet",
           "relationship": "relationship still young", "fit": "fit", "other": "other"},
    "it": {"budget": "budget", "timing": "tempistiche", "consult": "altre persone da consultare",
           "competitor": "un concorrente", "no_need": "nessuna esigenza attuale", "price": "prezzo",
           "unconvinced": "non ancora convinti", "relationship": "relazione ancora giovane", "fit": "adeguatezza",
           "other": "altro"},
}
KIND_WORDS = {
    "en": {"thank_you": "thank-you", "recontact": "recontact", "rep_summary": "summary",
           "debrief_reminder": "debrief reminder", "rep_notice": "delivery notice", "rep_answer": "answer"},
    "it": {"thank_you": "ringraziamento", "recontact": "ricontatto", "rep_summary": "riepilogo",
           "debrief_reminder": "promemoria debrief", "rep_notice": "avviso di consegna",
           "rep_answer": "risposta"},
}
AND = {"en": "and", "it": "e"}
# Customers a rep's summary lists one by one; the others are counted ("and N more"), so it renders for any number.
SUMMARY_CUSTOMERS = 10
_CUSTOMER_KINDS = ("thank_you", "recontact")


def date_text(day: date | None, language: str) -> str | None:
    if day is None:
        return None
    return f"{day.day} {MONTHS.get(language, MONTHS['en'])[day.month - 1]} {day.year}"


def when_text(moment: datetime, zone: ZoneInfo, language: str) -> str:
    local = moment.astimezone(zone)
    return f"{date_text(local.date(), language)}, {local:%H:%M} ({zone.key})"


def _first_name(name: str | None) -> str | None:
    return name.split()[0] if name and name.split() else None


def _people_text(people: list[dict], language: str) -> str:
    words = [f"{p['name']} ({p['role']})" if p.get("name") and p.get("role") else (p.get("name") or p.get("role"))
             for p in people]
    words = [w for w in words if w]
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {AND.get(language, 'and')} {words[-1]}"


def outcome_words(outcome: Outcome | None, language: str) -> dict:
    if outcome is None:
        return {"outcome": "unknown", "cause": None, "reasons": [], "reasons_text": "", "recontact_text": None,
                "decision_makers": [], "decision_makers_text": ""}
    words = REASON_WORDS.get(language, REASON_WORDS["en"])
    return {"outcome": outcome.outcome, "cause": outcome.cause, "reasons": list(outcome.reasons),
            "reasons_text": ", ".join(words.get(r, r) for r in outcome.reasons),
            "recontact_text": date_text(outcome.recontact_on, language),
            "decision_makers": list(outcome.decision_makers),
            "decision_makers_text": _people_text(list(outcome.decision_makers), language)}


def template_context(session: Session, row: OutboundEmail, settings: Settings) -> dict:
    """Everything the row's template may use (see templates/email/ for the names)."""
    rep = session.get(Rep, row.rep_id)
    outcome = session.get(Outcome, row.outcome_id) if row.outcome_id else None
    customer = session.get(Customer, row.customer_id) if row.customer_id else _first_customer(session, outcome)
    language = row.language
    signer = Signer(settings)
    context = {
        "customer": {"name": customer.name if customer else None,
                     "first_name": _first_name(customer.name) if customer else None,
                     "email": customer.email if customer else ""},
        "rep": {"name": rep.name, "first_name": _first_name(rep.name), "email": rep.email},
        "meeting": {"subject": outcome.meeting_subject if outcome else "",
                    "date_text": date_text(outcome.meeting_at.astimezone(ZoneInfo(rep.timezone)).date(), language)
                    if outcome else ""},
        "outcome": outcome_words(outcome, language),
        "personal_line": row.personal_line,
        "links": {"unsubscribe": unsubscribe_url(signer, row.to_address, language) if row.customer_id else "",
                  "debrief": debrief_url(signer, outcome, rep) if outcome else "", "manage": [],
                  # the rep's own calendar feed: in the rep's mail only, never in a customer's
                  "calendar": "" if row.customer_id else feed_url(signer, rep)},
        "planned": [], "more": {"customers": 0, "emails": 0}, "evidence": [],
        "held": {"count": 0, "reason": "", "confirm": ""},
        "notice": row.notice or {"address": "", "error": ""},
    }
    if row.kind == "rep_summary" and outcome is not None:
        _add_summary(session, context, outcome, rep, signer, language)
    return context


def _first_customer(session: Session, outcome: Outcome | None) -> Customer | None:
    if outcome is None:
        return None
    from service.models import OutcomeCustomer

    link = session.exec(select(OutcomeCustomer).where(OutcomeCustomer.outcome_id == outcome.id)).first()
    return session.get(Customer, link.customer_id) if link else None


def _add_summary(session: Session, context: dict, outcome: Outcome, rep: Rep, signer: Signer, language: str) -> None:
    """The rep's summary: what was planned for the first customers (with cancel/postpone links), how many others,
    and why Keepwarm read it so."""
    zone = ZoneInfo(rep.timezone)
    kinds = KIND_WORDS.get(language, KIND_WORDS["en"])
    mine = (OutboundEmail.outcome_id == outcome.id, OutboundEmail.kind.in_(_CUSTOMER_KINDS))
    listed = _first_customers(session, mine)
    rows = session.exec(select(OutboundEmail).where(*mine, OutboundEmail.to_address.in_(listed))
                        .order_by(OutboundEmail.due_at, OutboundEmail.id))
    context["more"] = _not_listed(session, mine, listed)
    context["held"] = _held(session, outcome, rep, signer, language)
    for planned in rows:
        item = {"kind_text": kinds.get(planned.kind, planned.kind), "to": planned.to_address,
                "due_text": when_text(planned.due_at, zone, language), "status": planned.status}
        context["planned"].append(item)
        if planned.status == "scheduled":
            context["links"]["manage"].append({**item, **manage_urls(signer, planned.id, rep.id)})
    context["evidence"] = [{"field": e.get("field"), "phrase": e.get("phrase"), "value_text": _value_text(e)}
                           for e in outcome.evidence]


def _first_customers(session: Session, mine: tuple) -> list[str]:
    """The addresses of the SUMMARY_CUSTOMERS customers whose first email is due first."""
    first_due = func.min(OutboundEmail.due_at)
    query = (select(OutboundEmail.to_address).where(*mine).group_by(OutboundEmail.to_address)
             .order_by(first_due, OutboundEmail.to_address).limit(SUMMARY_CUSTOMERS))
    return list(session.exec(query))


def _not_listed(session: Session, mine: tuple, listed: list[str]) -> dict:
    """How many customers the summary does not list, and how many of their emails are still to go."""
    rest = (*mine, OutboundEmail.to_address.not_in(listed))
    customers = session.exec(select(func.count(func.distinct(OutboundEmail.to_address))).where(*rest)).one()
    emails = session.exec(select(func.count()).select_from(OutboundEmail)
                          .where(*rest, OutboundEmail.status.not_in(("canceled", "failed")))).one()
    return {"customers": customers, "emails": emails}


def _held(session: Session, outcome: Outcome, rep: Rep, signer: Signer, language: str) -> dict:
    """The customer emails waiting for the rep's confirmation: how many, why, and the one-click link."""
    count = session.exec(select(func.count()).select_from(OutboundEmail).where(
        OutboundEmail.outcome_id == outcome.id, OutboundEmail.status == "held")).one()
    if not count:
        return {"count": 0, "reason": "", "confirm": ""}
    return {"count": count, "reason": held_words(outcome.held_reason or "", language),
            "confirm": confirm_url(signer, outcome, rep)}


_HELD_WORDS = {"it": {"not sure of the outcome": "non sono sicuro dell'esito",
                      "not sure of the cause": "non sono sicuro della causa",
                      "the policy holds every customer email for the rep's confirmation":
                          "la regola aziendale chiede la tua conferma per ogni email ai clienti",
                      "customers in one email": "clienti in una sola email",
                      "the customer addresses come from your note's text":
                          "gli indirizzi dei clienti vengono dal testo della tua nota"}}


def held_words(reason: str, language: str) -> str:
    """Why emails are held, in the rep's language (planning words it in English)."""
    for english, local in _HELD_WORDS.get(language, {}).items():
        reason = reason.replace(english, local)
    return reason


def confirm_url(signer: Signer, outcome: Outcome, rep: Rep) -> str:
    return signer.url("/manage/confirm", signer.make("confirm", {"outcome": outcome.id, "rep": rep.id}))


def _value_text(evidence: dict) -> str:
    value = evidence.get("value")
    if value is None:
        return ""
    return ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def unsubscribe_url(signer: Signer, address: str, language: str | None = None) -> str:
    """The customer's signed unsubscribe link; with the email's language, the page speaks it too."""
    payload = {"email": address, "lang": language} if language else {"email": address}
    return signer.url("/unsubscribe", signer.make("unsubscribe", payload))


def debrief_url(signer: Signer, outcome: Outcome, rep: Rep) -> str:
    return signer.url("/debrief", signer.make("debrief", {"outcome": outcome.id, "rep": rep.id}))


def manage_urls(signer: Signer, outbound_id: int, rep_id: int) -> dict:
    token = signer.make("manage", {"outbound": outbound_id, "rep": rep_id})
    return {"cancel": signer.url("/manage/cancel", token), "postpone": signer.url("/manage/postpone", token)}
