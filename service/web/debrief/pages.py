"""What the debrief pages need: the link checked, and the meeting, plan and preview in the rep's words."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlmodel import Session, select

from service.models import Customer, Debrief, OutboundEmail, Outcome, OutcomeCustomer, Rep
from service.outbox.template_context import KIND_WORDS, date_text, when_text
from service.pipeline.debrief import (
    CONSULT_DAYS,
    DATED_PLANS,
    OUR_SIDE,
    OUTCOME_CHOICES,
    PLANS,
    THEIR_SIDE,
    Answers,
    Preview,
    current_customers,
    customer_zone,
    debrief_for,
)
from service.planning.policy import Policy, current_policy
from service.settings import Settings
from service.tokens import Signer, TokenError
from service.web.debrief.labels import (
    OUR_SIDE_LABELS,
    OUTCOME_LABELS,
    PLAN_LABELS,
    STATUS_LABELS,
    THEIR_SIDE_LABELS,
    labelled,
    reason_text,
)
from service.web.i18n import use_language

SHOWN_KINDS = ("thank_you", "recontact")


class LinkProblem(Exception):
    """A debrief link that cannot open its page: the status, and what the rep can do about it."""

    def __init__(self, status: int, title: str, text: str):
        super().__init__(title)
        self.status, self.title, self.text = status, title, text


def _expired(days: int) -> LinkProblem:
    return LinkProblem(410, _("This debrief link has expired"),
                       _("Debrief links work for %(days)d days after the summary email, so this one can no longer "
                         "change anything. Answers you saved earlier are kept. To change a scheduled email now, "
                         "use the cancel and postpone links in the summary email, or ask your Keepwarm admin.",
                         days=days))


def _invalid() -> LinkProblem:
    return LinkProblem(400, _("This link is not valid"),
                       _("The link is incomplete or was changed. Open the debrief with the button in your "
                         "Keepwarm summary email; if you copied the link by hand, make sure you copied all of it."))


def _gone() -> LinkProblem:
    return LinkProblem(404, _("This meeting is no longer here"),
                       _("Keepwarm has no record of this meeting any more (an admin may have removed it). There "
                         "is nothing to fill in; if you think this is a mistake, ask your Keepwarm admin."))


def _not_yours() -> LinkProblem:
    return LinkProblem(403, _("This debrief is not yours"),
                       _("The link belongs to another rep's meeting. Open the debrief from your own summary "
                         "email; if this meeting is yours, ask your Keepwarm admin to move it to you."))


def opened(session: Session, settings: Settings, token: str) -> Outcome:
    """The outcome a debrief link opens, or LinkProblem saying why not; from the outcome on, the page speaks the
    language of the rep's summary (a link that opens nothing: the browser's)."""
    try:
        payload = Signer(settings).read("debrief", token, max_age_days=settings.debrief_link_days)
    except TokenError as error:
        raise (_expired(settings.debrief_link_days) if error.expired else _invalid()) from None
    if not isinstance(payload, dict):
        raise _invalid()
    outcome = session.get(Outcome, _as_id(payload.get("outcome")))
    if outcome is None:
        raise _gone()
    use_language(outcome.language)
    rep = session.get(Rep, outcome.rep_id)
    if _as_id(payload.get("rep")) != outcome.rep_id or rep is None or not rep.active:
        raise _not_yours()
    return outcome


def _as_id(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


@dataclass
class Page:
    """The meeting as the rep knows it, and the state of its plan."""

    customer_label: str
    first_names: str
    meeting_text: str
    subject: str
    superseded: bool
    noemail: bool
    link_days: int
    today: date
    zone: ZoneInfo
    debrief: Debrief | None
    language: str
    rows: list[dict] = field(default_factory=list)
    hints: dict[str, str] = field(default_factory=dict)


def page_for(session: Session, settings: Settings, outcome: Outcome) -> Page:
    """Everything both debrief pages show about the meeting."""
    rep = session.get(Rep, outcome.rep_id)
    zone = ZoneInfo(rep.timezone)
    current = current_customers(session, outcome)
    shown = current or _all_customers(session, outcome)
    language = outcome.language
    return Page(customer_label=_label(shown), first_names=_first_names(shown),
                meeting_text=date_text(outcome.meeting_at.astimezone(zone).date(), language),
                subject=outcome.meeting_subject, superseded=bool(shown) and not current, noemail=outcome.noemail,
                link_days=settings.debrief_link_days, today=datetime.now(zone).date(), zone=zone,
                debrief=debrief_for(session, outcome.id), language=language, rows=planned_rows(session, outcome),
                hints=plan_hints(current_policy(session), _first_names(shown)))


def plan_hints(policy: Policy, who: str) -> dict[str, str]:
    """One line under each plan choice saying what it will do, with the policy's own delays."""
    consult = policy.reason_delays.get("consult", CONSULT_DAYS)
    later = policy.default_recontact_days
    return {"recontact_on_date": _("An email on the date you pick, written for their reasons."),
            "meet_decision_makers": _("Offer to meet the others in the decision, in about %(days)d days.",
                                      days=consult),
            "new_proposal": _("Try again with a new proposal: in about %(days)d days, or on your date.",
                              days=later),
            "stay_in_touch": _("A friendly hello in about %(days)d days, no pitch.", days=later),
            "no_recontact": _("Nothing more goes to %(who)s; a pending recontact is canceled.", who=who)}


def _all_customers(session: Session, outcome: Outcome) -> list[Customer]:
    query = select(Customer).join(OutcomeCustomer, OutcomeCustomer.customer_id == Customer.id).where(
        OutcomeCustomer.outcome_id == outcome.id)
    return list(session.exec(query.order_by(Customer.id)))


def _label(customers: list[Customer]) -> str:
    names = [c.name or c.email for c in customers]
    if not names:
        return _("your customer")
    return names[0] if len(names) == 1 else _("%(names)s and %(last)s", names=", ".join(names[:-1]),
                                              last=names[-1])


def _first_names(customers: list[Customer]) -> str:
    names = [(c.name.split()[0] if c.name and c.name.split() else c.email) for c in customers]
    return _label([Customer(email=n) for n in names]) if names else _("the customer")


def planned_rows(session: Session, outcome: Outcome) -> list[dict]:
    """The meeting's emails to customers, soonest first, in the customer's local time."""
    rows = session.exec(select(OutboundEmail).where(OutboundEmail.outcome_id == outcome.id,
                                                    OutboundEmail.kind.in_(SHOWN_KINDS))
                        .order_by(OutboundEmail.due_at, OutboundEmail.id))
    return [_row(session, outcome, row) for row in rows]


def _row(session: Session, outcome: Outcome, row: OutboundEmail) -> dict:
    zone, language = _zone_of(session, row, outcome), outcome.language
    kinds = KIND_WORDS.get(language, KIND_WORDS["en"])
    return {"id": row.id, "kind": row.kind, "kind_text": kinds.get(row.kind, row.kind).capitalize(),
            "to": row.to_name or row.to_address, "when": when_text(row.sent_at or row.due_at, zone, language),
            "status": row.status, "status_text": STATUS_LABELS.get(row.status, row.status),
            "reason": reason_text(row.canceled_reason), "personal_line": row.personal_line, "variant": row.variant}


def _zone_of(session: Session, row: OutboundEmail, outcome: Outcome) -> ZoneInfo:
    customer = session.get(Customer, row.customer_id) if row.customer_id else None
    return customer_zone(session, customer, outcome)


def answer_lines(answers: Answers, language: str) -> list[tuple[str, str]]:
    """The saved answers as (question, answer) lines for the summary page, in the page's language."""
    people = "\n".join(" · ".join(v for v in (p.get("name"), p.get("role")) if v) for p in answers.decision_makers)
    dated = answers.recontact_on and answers.writes and answers.plan in DATED_PLANS
    when = f": {date_text(answers.recontact_on, language)}" if dated else ""
    return [(_("Outcome"), labelled(OUTCOME_CHOICES, OUTCOME_LABELS)[answers.outcome]),
            (_("On our side"), _joined(labelled(OUR_SIDE, OUR_SIDE_LABELS), answers.ours)),
            (_("On their side"), _joined(labelled(THEIR_SIDE, THEIR_SIDE_LABELS), answers.theirs)),
            (_("Also deciding"), people or _("Nobody named")),
            (_("Next time"), answers.lesson or _("Nothing written")),
            (_("Next step"), f"{labelled(PLANS, PLAN_LABELS)[answers.plan]}{when}"),
            (_("Your line in the email"), answers.personal_line or _("None"))]


def saved_text(page: Page) -> str:
    """When the debrief was saved and last changed, on the rep's clock."""
    debrief = page.debrief
    saved = when_text(debrief.submitted_at, page.zone, page.language)
    if debrief.updated_at == debrief.submitted_at:
        return _("Saved %(when)s.", when=saved)
    return _("Saved %(when)s, last changed %(changed)s.", when=saved,
             changed=when_text(debrief.updated_at, page.zone, page.language))


def _joined(words: dict, keys) -> str:
    return "\n".join(str(words[k]) for k in keys) or _("Nothing ticked")


def preview_view(preview: Preview | None, language: str) -> dict | None:
    """The preview as the page shows it: who, when, subject and text."""
    if preview is None:
        return None
    return {"to": preview.customer.name or preview.customer.email, "email": preview.customer.email,
            "when": when_text(preview.due_at, preview.zone, language), "subject": preview.subject,
            "text": preview.text.strip(), "blocked": preview.blocked, "others": preview.others}
