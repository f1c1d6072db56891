"""A debrief applied to the plan: every plan choice, idempotence, opt-outs, reminders, corrections, the preview."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from service.models import Customer, Debrief, OutboundEmail, Outcome, OutcomeCustomer, Rep, Suppression
from service.outbox.rows import new_outbound
from service.outbox.sender import reminder_moot
from service.pipeline.debrief import Answers, prefill, preview, save_debrief

LONDON, ROME = ZoneInfo("Europe/London"), ZoneInfo("Europe/Rome")
MEETING = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # a Monday
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # the next morning, when the rep opens the debrief


@dataclass
class World:
    """A database with the test reps, and the few moves every test makes."""

    session: Session
    settings: object
    tom: Rep

    def lost(self, *customers: tuple[str, str | None], cause="internal", reasons=("unconvinced",), **fields) -> Outcome:
        """A lost outcome for these (email, time zone) customers, with its thank-yous and a debrief reminder."""
        outcome = Outcome(rep_id=self.tom.id, outcome=fields.pop("outcome", "lost"), cause=cause,
                          reasons=list(reasons), meeting_at=MEETING, meeting_subject="Our meeting", **fields)
        self.session.add(outcome)
        self.session.flush()
        for email, zone in customers or (("jane@globex.example", None),):
            customer = Customer(email=email, name=email.split("@")[0].capitalize() + " Doe", timezone=zone)
            self.session.add(customer)
            self.session.flush()
            self.session.add(OutcomeCustomer(outcome_id=outcome.id, customer_id=customer.id))
            self.row(outcome, "thank_you", customer, datetime(2026, 12, 1, 9, 30, tzinfo=UTC), "lost")
        self.row(outcome, "debrief_reminder", None, datetime(2026, 12, 3, 9, 30, tzinfo=UTC))
        self.session.commit()
        return outcome

    def row(self, outcome, kind, customer, due_at, variant="default") -> OutboundEmail:
        """A planned email, as planning would have written it."""
        row = new_outbound(self.settings, kind=kind, rep=self.tom, to_address=customer.email if customer else
                           self.tom.email, to_name=customer.name if customer else self.tom.name, due_at=due_at,
                           outcome_id=outcome.id, language="en", customer_id=customer.id if customer else None,
                           variant=variant)
        self.session.add(row)
        self.session.flush()
        return row

    def rows(self, outcome, kind="recontact", status=None) -> list[OutboundEmail]:
        query = select(OutboundEmail).where(OutboundEmail.outcome_id == outcome.id, OutboundEmail.kind == kind)
        if status:
            query = query.where(OutboundEmail.status == status)
        return list(self.session.exec(query.order_by(OutboundEmail.id)))

    def submit(self, target: Outcome, /, now=NOW, **answers):
        saved = save_debrief(self.session, self.settings, target, Answers(**answers), now=now)
        self.session.commit()
        return saved

    def customer(self, email="jane@globex.example") -> Customer:
        return self.session.exec(select(Customer).where(Customer.email == email)).one()


@pytest.fixture
def w(engine, settings, reps):
    with Session(engine, expire_on_commit=False) as session:
        yield World(session, settings, session.exec(select(Rep).where(Rep.email == "tom.baker@acme.example")).one())


def local(moment: datetime, zone=LONDON) -> str:
    return moment.astimezone(zone).strftime("%a %Y-%m-%d %H:%M")


def test_recontact_on_a_date_lands_on_the_next_business_day_in_each_customers_zone(w):
    outcome = w.lost(("jane@globex.example", None), ("ada@initech.example", "Europe/Rome"))
    saved = w.submit(outcome, theirs=("budget",), plan="recontact_on_date",
                   recontact_on=date(2027, 3, 6), personal_line="  Hope the new\nyear starts well.  ")
    jane, ada = w.rows(outcome, status="scheduled")
    assert local(jane.due_at) == "Mon 2027-03-08 10:00" and local(ada.due_at, ROME) == "Mon 2027-03-08 10:00"
    assert {jane.variant, ada.variant} == {"budget"}
    assert jane.personal_line == "Hope the new year starts well."
    assert sorted(saved.planned) == sorted([(jane.id, jane.due_at), (ada.id, ada.due_at)])


def test_the_variant_follows_the_reasons_of_the_debrief(w):
    outcome = w.lost()
    w.submit(outcome, theirs=("timing", "consult"), plan="recontact_on_date",
           recontact_on=date(2027, 1, 12))
    assert w.rows(outcome)[0].variant == "consult"


def test_meeting_the_decision_makers_is_a_consult_recontact_two_weeks_out_naming_them(w):
    outcome = w.lost(cause="external", reasons=("consult",))
    people = ({"name": "Maria Rossi", "role": "CFO"}, {"name": " ", "role": ""}, {"name": "Maria Rossi", "role": "CFO"})
    w.submit(outcome, theirs=("consult",), decision_makers=people, plan="meet_decision_makers")
    [row] = w.rows(outcome)
    assert (row.variant, local(row.due_at)) == ("consult", "Tue 2026-12-15 10:00")
    assert w.session.get(Outcome, outcome.id).decision_makers == [{"name": "Maria Rossi", "role": "CFO"}]


def test_a_new_proposal_waits_the_default_delay_unless_the_rep_gives_a_date(w):
    outcome = w.lost()
    w.submit(outcome, ours=("needs",), plan="new_proposal")
    [row] = w.rows(outcome)
    assert (row.variant, local(row.due_at)) == ("default", "Mon 2027-03-01 10:00")
    w.submit(outcome, ours=("needs",), plan="new_proposal", recontact_on=date(2027, 2, 2))
    assert [local(r.due_at) for r in w.rows(outcome)] == ["Tue 2027-02-02 10:00"]


def test_staying_in_touch_is_a_default_recontact_at_the_policy_delay(w):
    outcome = w.lost()
    w.submit(outcome, plan="stay_in_touch", recontact_on=date(2027, 6, 1))
    [row] = w.rows(outcome)
    assert (row.variant, local(row.due_at)) == ("default", "Mon 2027-03-01 10:00")  # no date for this plan


def test_no_recontact_cancels_the_pending_one(w):
    outcome = w.lost(cause="external", reasons=("budget",))
    customer = w.customer()
    planned = w.row(outcome, "recontact", customer, datetime(2027, 3, 1, 10, tzinfo=UTC), "budget")
    w.session.commit()
    w.submit(outcome, theirs=("budget",), plan="no_recontact")
    row = w.session.get(OutboundEmail, planned.id)
    assert (row.status, row.canceled_reason) == ("canceled", "debrief: no recontact")
    assert w.rows(outcome, status="scheduled") == []


def test_a_pending_recontact_is_moved_in_place_and_the_same_answers_change_nothing(w):
    outcome = w.lost(cause="external", reasons=("budget",))
    customer = w.customer()
    planned = w.row(outcome, "recontact", customer, datetime(2027, 3, 1, 10, tzinfo=UTC), "budget")
    w.session.commit()
    answers = {"theirs": ("budget",), "plan": "recontact_on_date", "recontact_on": date(2027, 4, 6)}
    first = w.submit(outcome, **answers)
    assert [r.id for r in w.rows(outcome)] == [planned.id]
    assert local(w.session.get(OutboundEmail, planned.id).due_at) == "Tue 2027-04-06 10:00"
    assert first.planned == [(planned.id, w.session.get(OutboundEmail, planned.id).due_at)]
    again = w.submit(outcome, **answers, lesson="Bring the ROI figures")
    assert again.planned == [] and again.changed == 0
    assert len(w.rows(outcome)) == 1 and len(w.session.exec(select(Debrief)).all()) == 1


def test_reapplying_a_changed_plan_never_leaves_two_scheduled_rows(w):
    outcome = w.lost()
    for plan, day in (("recontact_on_date", date(2027, 1, 12)), ("stay_in_touch", None),
                      ("meet_decision_makers", None), ("recontact_on_date", date(2027, 1, 12))):
        w.submit(outcome, plan=plan, recontact_on=day)
        assert len(w.rows(outcome, status="scheduled")) == 1
    assert len(w.rows(outcome)) == 1  # one row, moved each time


def test_delays_count_from_the_first_submission_so_a_later_edit_does_not_slide_the_date(w):
    outcome = w.lost()
    w.submit(outcome, plan="meet_decision_makers")
    first = w.rows(outcome)[0].due_at
    w.submit(outcome, now=NOW + timedelta(days=5), plan="meet_decision_makers",
           personal_line="Looking forward to meeting your CFO.")
    [row] = w.rows(outcome)
    assert row.due_at == first and row.personal_line == "Looking forward to meeting your CFO."
    debrief = w.session.exec(select(Debrief)).one()
    assert debrief.submitted_at == NOW and debrief.updated_at == NOW + timedelta(days=5)


def test_suppressed_and_undeliverable_customers_get_rows_born_canceled(w):
    outcome = w.lost(("jane@globex.example", None), ("bob@hooli.example", None))
    w.session.add(Suppression(email="jane@globex.example", reason="unsubscribed"))
    w.session.exec(select(Customer).where(Customer.email == "bob@hooli.example")).one().undeliverable = True
    w.session.commit()
    saved = w.submit(outcome, plan="recontact_on_date", recontact_on=date(2027, 1, 12))
    assert {(r.to_address, r.status, r.canceled_reason) for r in w.rows(outcome)} == {
        ("jane@globex.example", "canceled", "suppressed"), ("bob@hooli.example", "canceled", "undeliverable")}
    assert saved.planned == []


def test_submitting_cancels_the_reminder_and_the_sender_guard_refuses_one_left_over(w):
    outcome = w.lost()
    [reminder] = w.rows(outcome, "debrief_reminder")
    assert reminder_moot(w.session, reminder) is None
    w.submit(outcome, ours=("unconvinced",), plan="no_recontact", lesson="Shorter demo")
    reminder = w.session.get(OutboundEmail, reminder.id)
    assert (reminder.status, reminder.canceled_reason) == ("canceled", "debrief submitted")
    # A reminder that escaped the cancel (queued by hand, say) is still refused at send time.
    assert reminder_moot(w.session, replace_status(reminder)) == "debrief submitted"
    assert reminder_moot(w.session, w.rows(outcome, "thank_you")[0]) is None
    assert w.session.get(Outcome, outcome.id).debrief_submitted_at == NOW


def replace_status(row: OutboundEmail) -> OutboundEmail:
    return OutboundEmail(**{**row.model_dump(), "id": None, "status": "scheduled"})


def test_the_recontact_never_falls_on_the_thank_yous_day(w):
    outcome = w.lost()
    w.submit(outcome, plan="recontact_on_date", recontact_on=date(2026, 12, 1))
    assert local(w.rows(outcome)[0].due_at) == "Wed 2026-12-02 10:00"


def test_a_customer_taken_over_by_a_newer_meeting_gets_nothing_from_this_debrief(w):
    outcome = w.lost()
    newer = Outcome(rep_id=w.tom.id, outcome="won", meeting_at=MEETING + timedelta(days=1))
    w.session.add(newer)
    w.session.flush()
    w.session.add(OutcomeCustomer(outcome_id=newer.id, customer_id=w.customer().id))
    w.session.commit()
    w.submit(outcome, plan="recontact_on_date", recontact_on=date(2027, 1, 12))
    assert w.rows(outcome) == []


def test_noemail_records_the_plan_and_sends_nothing(w):
    outcome = w.lost(noemail=True)
    w.submit(outcome, plan="stay_in_touch")
    assert w.rows(outcome) == [] and w.session.exec(select(Debrief)).one().plan == "stay_in_touch"


def test_won_after_all_cancels_the_recontact_and_turns_the_thank_you_into_a_won_one(w):
    outcome = w.lost(cause="external", reasons=("budget",))
    customer = w.customer()
    w.row(outcome, "recontact", customer, datetime(2027, 3, 1, 10, tzinfo=UTC), "budget")
    w.session.commit()
    w.submit(outcome, outcome="won", plan="recontact_on_date")
    assert [r.status for r in w.rows(outcome)] == ["canceled"]
    assert w.rows(outcome, "thank_you")[0].variant == "won"
    assert w.session.get(Outcome, outcome.id).outcome == "won"
    assert w.session.exec(select(Debrief)).one().plan == "no_recontact"


def test_an_unclear_note_corrected_to_lost_gets_its_thank_you(w):
    outcome = w.lost(outcome="unknown", cause=None, reasons=())
    w.session.delete(w.rows(outcome, "thank_you")[0])  # planning writes none for an unknown outcome
    w.session.commit()
    w.submit(outcome, ours=("relationship",), plan="no_recontact")
    [thank_you] = w.rows(outcome, "thank_you")
    assert (thank_you.variant, thank_you.status) == ("lost", "scheduled") and thank_you.due_at >= NOW


def test_prefill_reads_the_note_and_the_current_plan_and_saving_it_unchanged_moves_nothing(w):
    outcome = w.lost(("ada@initech.example", "Europe/Rome"), cause="external",
                     reasons=("budget", "consult", "other"), decision_makers=[{"name": "Maria Rossi", "role": "CFO"}])
    planned = w.row(outcome, "recontact", w.customer("ada@initech.example"),
                    datetime(2027, 4, 1, 8, 0, tzinfo=UTC), "consult")  # 10:00 in Rome, as planning writes it
    planned.personal_line = "Ciao!"
    w.session.commit()
    answers = prefill(w.session, outcome)
    assert (answers.theirs, answers.ours) == (("budget", "consult", "other"), ())
    assert (answers.plan, answers.recontact_on, answers.personal_line) == ("meet_decision_makers", date(2027, 4, 1),
                                                                          "Ciao!")
    assert answers.decision_makers == ({"name": "Maria Rossi", "role": "CFO"},)
    saved = w.submit(outcome, **{**answers.__dict__, "lesson": "Ask who signs"})
    assert saved.changed == 0 and prefill(w.session, outcome).lesson == "Ask who signs"
    [row] = w.rows(outcome)
    assert (row.id, row.due_at, row.status) == (planned.id, datetime(2027, 4, 1, 8, 0, tzinfo=UTC), "scheduled")


def test_the_answers_refuse_words_outside_the_form_and_say_which_side():
    with pytest.raises(ValueError, match="plan"):
        Answers(plan="call_them")
    with pytest.raises(ValueError, match="needs a date"):
        Answers(plan="recontact_on_date")
    with pytest.raises(ValueError, match="theirs"):
        Answers(theirs=("unconvinced",))
    assert Answers(ours=("needs",), theirs=("budget",)).cause == "both"
    assert Answers(theirs=("other",)).cause == "external" and Answers().cause is None
    assert Answers(ours=("unconvinced", "needs"), theirs=("consult", "other")).reasons == ("consult", "unconvinced")
    answers = Answers(theirs=("budget",), plan="recontact_on_date", recontact_on=date(2027, 1, 5))
    assert Answers.from_json(answers.to_json()) == answers


def test_the_preview_renders_the_email_with_the_reps_line_and_the_people_named_in_the_form(w):
    outcome = w.lost(cause="external", reasons=("consult",))
    answers = Answers(theirs=("consult",), plan="meet_decision_makers", personal_line="See you in Milan!",
                      decision_makers=({"name": "Maria Rossi", "role": "CFO"},))
    shown = preview(w.session, w.settings, outcome, answers, now=NOW)
    assert shown.customer.email == "jane@globex.example" and local(shown.due_at) == "Tue 2026-12-15 10:00"
    assert "Maria Rossi (CFO)" in shown.text and "See you in Milan!" in shown.text
    assert "/unsubscribe/" not in shown.text and shown.subject
    assert preview(w.session, w.settings, outcome, replace(answers, plan="no_recontact"), now=NOW) is None
    assert w.rows(outcome) == [] and w.session.exec(select(Debrief)).first() is None  # nothing saved
