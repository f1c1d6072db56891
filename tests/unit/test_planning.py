"""Planning: outcome facts + policy + now → emails with UTC due times; pure, no servers."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from service.planning.calendar import is_business_day, next_business_slot
from service.planning.plan import CustomerFacts, OutcomeFacts, PlannedEmail, hold_for, plan, recontact_variant
from service.planning.policy import Policy

ROME = ZoneInfo("Europe/Rome")
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
ADA = "ada@customer.example"
MEETING = datetime(2026, 5, 12, 15, 0, tzinfo=ROME)  # a Tuesday


def facts(**changes) -> OutcomeFacts:
    """A lost sale for budget by a Rome rep to one customer, with `changes` applied."""
    base = {"outcome": "lost", "cause": "external", "reasons": ("budget",), "recontact_on": None,
            "meeting_at": MEETING, "rep_timezone": "Europe/Rome", "customers": (CustomerFacts(ADA),)}
    return OutcomeFacts(**(base | changes))


def plan_for(policy: Policy | None = None, now: datetime | None = None, **changes) -> list[PlannedEmail]:
    """plan() for facts(**changes), read a minute after the meeting unless `now` says otherwise."""
    outcome = facts(**changes)
    emails = plan(outcome, policy or Policy(), now or outcome.meeting_at + timedelta(minutes=1))
    assert all(email.due_at.tzinfo is UTC for email in emails)
    return emails


def only(emails: list[PlannedEmail], kind: str, to: str | None = ADA) -> PlannedEmail:
    """The single email of `kind` to `to` (None: the rep)."""
    found = [email for email in emails if email.kind == kind and email.to == (None if kind in (
        "rep_summary", "debrief_reminder") else to)]
    assert len(found) == 1, emails
    return found[0]


def local(moment: datetime, zone: ZoneInfo = ROME) -> str:
    """A due time as a person in `zone` reads it, weekday included."""
    return moment.astimezone(zone).strftime("%a %Y-%m-%d %H:%M")


def at(zone: ZoneInfo, *parts: int, fold: int = 0) -> datetime:
    """An aware local datetime."""
    return datetime(*parts, tzinfo=zone, fold=fold)


# ---------------------------------------------------------------------------------------------------- thank_you


@pytest.mark.parametrize("meeting, expected", [
    (at(ROME, 2026, 5, 12, 15, 0), "Wed 2026-05-13 09:30"),
    (at(ROME, 2026, 5, 12, 7, 0), "Wed 2026-05-13 09:30"),  # an early recap still waits for the next day
    (at(ROME, 2026, 5, 15, 17, 0), "Mon 2026-05-18 09:30"),
    (at(ROME, 2026, 5, 15, 20, 0), "Mon 2026-05-18 09:30"),  # Friday evening
    (at(ROME, 2026, 5, 16, 11, 0), "Mon 2026-05-18 09:30"),  # Saturday
    (at(ROME, 2026, 5, 17, 23, 30), "Mon 2026-05-18 09:30"),  # Sunday night
])
def test_thank_you_is_the_next_business_morning(meeting, expected):
    email = only(plan_for(meeting_at=meeting), "thank_you")
    assert (local(email.due_at), email.variant, email.canceled_reason) == (expected, "lost", None)


@pytest.mark.parametrize("policy, meeting, zone, expected", [
    (Policy(holiday_country="IT"), at(ROME, 2026, 4, 30, 16, 0), ROME, "Mon 2026-05-04 09:30"),  # 1 May
    (Policy(), at(ROME, 2026, 4, 30, 16, 0), ROME, "Fri 2026-05-01 09:30"),  # no calendar: weekends only
    (Policy(extra_holidays=(date(2026, 5, 1),)), at(ROME, 2026, 4, 30, 16, 0), ROME, "Mon 2026-05-04 09:30"),
    (Policy(holiday_country="IT"), at(ROME, 2026, 12, 7, 16, 0), ROME, "Wed 2026-12-09 09:30"),  # 8 December
    (Policy(holiday_country="IT"), at(ROME, 2026, 12, 24, 16, 0), ROME, "Mon 2026-12-28 09:30"),  # 25-26
    (Policy(holiday_country="GB"), at(LONDON, 2025, 12, 24, 16, 0), LONDON, "Mon 2025-12-29 09:30"),  # Boxing Day
    (Policy(holiday_country="US"), at(NEW_YORK, 2026, 11, 25, 16, 0), NEW_YORK, "Fri 2026-11-27 09:30"),
])
def test_thank_you_skips_holidays(policy, meeting, zone, expected):
    emails = plan_for(policy, meeting_at=meeting, rep_timezone=str(zone))
    assert local(only(emails, "thank_you").due_at, zone) == expected


@pytest.mark.parametrize("hours, meeting, expected", [
    (12, at(ROME, 2026, 5, 12, 23, 0), "Wed 2026-05-13 11:00"),  # 09:30 is only 10.5 hours later
    (24, at(ROME, 2026, 5, 12, 17, 0), "Wed 2026-05-13 17:00"),
    (24, at(ROME, 2026, 5, 12, 17, 59, 30), "Thu 2026-05-14 09:30"),  # 17:59:30 rounds to 18:00: window shut
    (24, at(ROME, 2026, 5, 12, 18, 30), "Thu 2026-05-14 09:30"),
    (72, at(ROME, 2026, 5, 14, 10, 0), "Mon 2026-05-18 09:30"),  # Sunday 10:00 is no business day
])
def test_thank_you_waits_the_minimum_hours_after_the_meeting(hours, meeting, expected):
    emails = plan_for(Policy(min_hours_after_meeting=hours), meeting_at=meeting)
    assert local(only(emails, "thank_you").due_at) == expected


@pytest.mark.parametrize("now, expected", [
    (at(ROME, 2026, 5, 11, 9, 0), "Mon 2026-05-11 09:30"),  # late, but the morning slot is still ahead
    (at(ROME, 2026, 5, 11, 11, 0), "Mon 2026-05-11 11:00"),  # read at 11:00: now
    (at(ROME, 2026, 5, 11, 11, 0, 20), "Mon 2026-05-11 11:01"),  # now, rounded up to the minute
    (at(ROME, 2026, 5, 11, 17, 59, 30), "Tue 2026-05-12 09:30"),  # rounding leaves the window
    (at(ROME, 2026, 5, 11, 20, 0), "Tue 2026-05-12 09:30"),
    (at(ROME, 2026, 5, 12, 8, 0), "Tue 2026-05-12 09:30"),  # before the window: today's morning
    (at(ROME, 2026, 5, 12, 9, 10), "Tue 2026-05-12 09:10"),  # inside the window already
    (at(ROME, 2026, 5, 15, 20, 0), "Mon 2026-05-18 09:30"),  # Friday 20:00
    (at(ROME, 2026, 5, 16, 10, 0), "Mon 2026-05-18 09:30"),  # Saturday
    (at(ROME, 2026, 5, 18, 14, 0), "Mon 2026-05-18 14:00"),  # a week late
])
def test_a_late_read_sends_the_thank_you_at_the_next_valid_slot_from_now(now, expected):
    emails = plan_for(now=now, meeting_at=at(ROME, 2026, 5, 8, 15, 0))  # Friday: the morning was Monday 11
    assert local(only(emails, "thank_you").due_at) == expected
    assert only(emails, "rep_summary").due_at == now


def test_a_meeting_dated_in_the_future_counts_as_now():
    emails = plan_for(now=MEETING, meeting_at=MEETING + timedelta(days=2))
    assert local(only(emails, "thank_you").due_at) == "Wed 2026-05-13 09:30"


# ---------------------------------------------------------------------------------------------------- recontact


@pytest.mark.parametrize("reasons, expected, variant", [
    (("budget",), "Mon 2026-08-10 10:00", "budget"),  # 90 days
    (("timing",), "Mon 2026-07-13 10:00", "timing"),  # 60 days: Saturday 11 July → Monday
    (("consult",), "Tue 2026-05-26 10:00", "consult"),  # 14 days
    (("no_need",), "Mon 2026-11-09 10:00", "default"),  # 180 days: Sunday 8 November → Monday
    (("budget", "timing"), "Mon 2026-07-13 10:00", "budget"),  # smallest delay, budget before timing
    (("timing", "consult"), "Tue 2026-05-26 10:00", "consult"),
    (("no_need", "budget"), "Mon 2026-08-10 10:00", "budget"),
    (("price", "no_need"), "Mon 2026-11-09 10:00", "default"),
    (("competitor",), "Mon 2026-08-10 10:00", "default"),  # external without a delayed reason: 90 days
    ((), "Mon 2026-08-10 10:00", "default"),
])
def test_recontact_delay_and_variant_follow_the_reasons(reasons, expected, variant):
    email = only(plan_for(reasons=reasons), "recontact")
    assert (local(email.due_at), email.variant, email.canceled_reason) == (expected, variant, None)


@pytest.mark.parametrize("reasons, expected", [
    (("budget",), "Thu 2026-06-11 10:00"),  # 30 days
    (("timing",), "Fri 2026-06-26 10:00"),  # no delay for timing any more: the default 45
])
def test_recontact_delays_come_from_the_policy(reasons, expected):
    policy = Policy(reason_delays={"budget": 30}, default_recontact_days=45)
    assert local(only(plan_for(policy, reasons=reasons), "recontact").due_at) == expected


@pytest.mark.parametrize("country, zone, recontact_on, expected", [
    (None, ROME, date(2026, 5, 16), "Mon 2026-05-18 10:00"),  # Saturday
    (None, ROME, date(2026, 9, 13), "Mon 2026-09-14 10:00"),  # Sunday
    (None, ROME, date(2026, 9, 16), "Wed 2026-09-16 10:00"),
    (None, ROME, date(2026, 12, 25), "Fri 2026-12-25 10:00"),  # no calendar: weekends only
    ("IT", ROME, date(2026, 12, 8), "Wed 2026-12-09 10:00"),
    ("IT", ROME, date(2026, 12, 25), "Mon 2026-12-28 10:00"),  # 25, 26 and the weekend
    ("IT", ROME, date(2026, 12, 26), "Mon 2026-12-28 10:00"),
    ("IT", ROME, date(2026, 6, 2), "Wed 2026-06-03 10:00"),
    ("IT", ROME, date(2027, 1, 6), "Thu 2027-01-07 10:00"),
    ("GB", LONDON, date(2026, 12, 25), "Tue 2026-12-29 10:00"),  # Boxing Day observed on Monday 28
    ("GB", LONDON, date(2026, 12, 26), "Tue 2026-12-29 10:00"),
    ("US", NEW_YORK, date(2026, 11, 26), "Fri 2026-11-27 10:00"),  # Thanksgiving
    ("US", NEW_YORK, date(2026, 7, 3), "Mon 2026-07-06 10:00"),  # Independence Day observed
])
def test_explicit_recontact_on_moves_to_the_next_business_day(country, zone, recontact_on, expected):
    emails = plan_for(Policy(holiday_country=country), recontact_on=recontact_on, rep_timezone=str(zone),
                      meeting_at=MEETING.astimezone(zone))
    email = only(emails, "recontact")
    assert (local(email.due_at, zone), email.variant) == (expected, "budget")


def test_company_closures_count_as_holidays():
    policy = Policy(holiday_country="IT", extra_holidays=(date(2026, 12, 24), date(2026, 12, 31)))
    assert local(only(plan_for(policy, recontact_on=date(2026, 12, 24)), "recontact").due_at) == \
        "Mon 2026-12-28 10:00"


@pytest.mark.parametrize("meeting, recontact_on, now, thank_you, recontact", [
    (MEETING, date(2026, 5, 13), MEETING, "Wed 2026-05-13 09:30", "Thu 2026-05-14 10:00"),  # "call me tomorrow"
    (at(ROME, 2026, 5, 8, 15, 0), date(2026, 5, 11), at(ROME, 2026, 5, 15, 20, 0),
     "Mon 2026-05-18 09:30", "Tue 2026-05-19 10:00"),  # read a week late, on Friday evening
    (at(ROME, 2026, 4, 24, 15, 0), date(2026, 5, 1), at(ROME, 2026, 5, 19, 11, 0),
     "Tue 2026-05-19 11:00", "Wed 2026-05-20 10:00"),
])
def test_recontact_is_never_in_the_past_nor_on_the_thank_you_day(meeting, recontact_on, now, thank_you, recontact):
    emails = plan_for(now=now, meeting_at=meeting, recontact_on=recontact_on)
    assert (local(only(emails, "thank_you").due_at), local(only(emails, "recontact").due_at)) == \
        (thank_you, recontact)


def test_a_week_late_read_keeps_the_recontact_counted_from_the_meeting():
    emails = plan_for(now=MEETING + timedelta(days=7), reasons=("consult",))
    assert local(only(emails, "recontact").due_at) == "Tue 2026-05-26 10:00"


# ---------------------------------------------------------------------------------------------------- zones


def test_a_tokyo_customer_of_a_rome_rep_is_written_on_tokyo_mornings():
    tokyo = CustomerFacts("kenji@customer.example", timezone="Asia/Tokyo")
    emails = plan_for(meeting_at=at(ROME, 2026, 5, 12, 16, 0), customers=(tokyo, CustomerFacts(ADA)))
    assert local(only(emails, "thank_you", tokyo.email).due_at, TOKYO) == "Wed 2026-05-13 09:30"
    assert only(emails, "thank_you", tokyo.email).due_at == datetime(2026, 5, 13, 0, 30, tzinfo=UTC)
    assert local(only(emails, "recontact", tokyo.email).due_at, TOKYO) == "Mon 2026-08-10 10:00"
    assert local(only(emails, "thank_you").due_at) == "Wed 2026-05-13 09:30"


def test_the_meeting_day_is_read_on_the_customers_calendar():
    tokyo = CustomerFacts("kenji@customer.example", timezone="Asia/Tokyo")
    # 17:30 in Rome is already 00:30 on Wednesday in Tokyo: Wednesday is the meeting's day there.
    emails = plan_for(meeting_at=at(ROME, 2026, 5, 12, 17, 30), customers=(tokyo,))
    assert local(only(emails, "thank_you", tokyo.email).due_at, TOKYO) == "Thu 2026-05-14 09:30"


def test_a_new_york_customer_of_a_rome_rep_gets_new_york_monday_morning():
    customer = CustomerFacts("joe@customer.example", timezone="America/New_York")
    emails = plan_for(meeting_at=at(ROME, 2026, 5, 15, 23, 30), customers=(customer,))
    assert local(only(emails, "thank_you", customer.email).due_at, NEW_YORK) == "Mon 2026-05-18 09:30"


@pytest.mark.parametrize("timezone", [None, "", "Mars/Olympus", "../etc/passwd"])
def test_an_unknown_customer_zone_falls_back_to_the_reps(timezone):
    emails = plan_for(customers=(CustomerFacts(ADA, timezone=timezone),))
    assert local(only(emails, "thank_you").due_at) == "Wed 2026-05-13 09:30"


def test_the_debrief_reminder_follows_the_reps_zone_not_the_customers():
    tokyo = CustomerFacts(ADA, timezone="Asia/Tokyo")
    emails = plan_for(cause="internal", customers=(tokyo,))
    assert local(only(emails, "debrief_reminder").due_at) == "Fri 2026-05-15 09:30"


# ---------------------------------------------------------------------------------------------------- DST


@pytest.mark.parametrize("meeting, expected_utc", [
    (at(ROME, 2026, 3, 20, 15, 0), datetime(2026, 3, 23, 8, 30, tzinfo=UTC)),  # the week before: CET
    (at(ROME, 2026, 3, 27, 15, 0), datetime(2026, 3, 30, 7, 30, tzinfo=UTC)),  # Sunday 29 March → CEST
    (at(ROME, 2026, 3, 28, 23, 30), datetime(2026, 3, 30, 7, 30, tzinfo=UTC)),
    (at(ROME, 2026, 10, 23, 15, 0), datetime(2026, 10, 26, 8, 30, tzinfo=UTC)),  # Sunday 25 October → CET
    (at(ROME, 2026, 10, 25, 2, 30, fold=1), datetime(2026, 10, 26, 8, 30, tzinfo=UTC)),  # the repeated hour
    (at(NEW_YORK, 2026, 2, 27, 15, 0), datetime(2026, 3, 2, 14, 30, tzinfo=UTC)),  # the week before: EST
    (at(NEW_YORK, 2026, 3, 6, 15, 0), datetime(2026, 3, 9, 13, 30, tzinfo=UTC)),  # Sunday 8 March → EDT
    (at(NEW_YORK, 2026, 10, 30, 15, 0), datetime(2026, 11, 2, 14, 30, tzinfo=UTC)),  # Sunday 1 November → EST
    (at(NEW_YORK, 2026, 11, 1, 1, 30), datetime(2026, 11, 2, 14, 30, tzinfo=UTC)),  # ambiguous meeting time
])
def test_thank_you_keeps_local_0930_across_dst_changes(meeting, expected_utc):
    zone = meeting.tzinfo
    email = only(plan_for(meeting_at=meeting, rep_timezone=str(zone)), "thank_you")
    assert email.due_at == expected_utc
    assert email.due_at.astimezone(zone).strftime("%a %H:%M") == "Mon 09:30"


@pytest.mark.parametrize("zone, recontact_on, expected_utc", [
    (ROME, date(2026, 3, 29), datetime(2026, 3, 30, 8, 0, tzinfo=UTC)),
    (ROME, date(2026, 10, 25), datetime(2026, 10, 26, 9, 0, tzinfo=UTC)),
    (NEW_YORK, date(2026, 3, 8), datetime(2026, 3, 9, 14, 0, tzinfo=UTC)),
    (NEW_YORK, date(2026, 11, 1), datetime(2026, 11, 2, 15, 0, tzinfo=UTC)),
])
def test_recontact_on_a_dst_sunday_goes_to_monday_1000_local(zone, recontact_on, expected_utc):
    emails = plan_for(meeting_at=at(zone, 2026, 2, 10, 15, 0), rep_timezone=str(zone), recontact_on=recontact_on)
    assert only(emails, "recontact").due_at == expected_utc


@pytest.mark.parametrize("meeting, expected_utc", [
    (at(ROME, 2026, 3, 26, 15, 0), datetime(2026, 3, 31, 7, 30, tzinfo=UTC)),
    (at(NEW_YORK, 2026, 10, 29, 15, 0), datetime(2026, 11, 3, 14, 30, tzinfo=UTC)),
])
def test_debrief_reminder_counts_business_days_across_dst(meeting, expected_utc):
    emails = plan_for(meeting_at=meeting, rep_timezone=str(meeting.tzinfo), cause="unknown")
    assert only(emails, "debrief_reminder").due_at == expected_utc


def test_a_late_read_in_the_dst_week_is_now_in_the_new_offset():
    emails = plan_for(meeting_at=at(ROME, 2026, 3, 27, 15, 0), now=at(ROME, 2026, 3, 30, 11, 0))
    assert only(emails, "thank_you").due_at == datetime(2026, 3, 30, 9, 0, tzinfo=UTC)


EVERY_DAY = Policy(business_days=range(7))


@pytest.mark.parametrize("after, at_time, expected_utc", [
    (at(ROME, 2026, 3, 28, 12, 0), time(2, 30), datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),  # skipped: 03:30 CEST
    (at(ROME, 2026, 10, 24, 12, 0), time(2, 30), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),  # twice: the first
    (at(NEW_YORK, 2026, 3, 7, 12, 0), time(2, 30), datetime(2026, 3, 8, 7, 30, tzinfo=UTC)),  # 03:30 EDT
    (at(NEW_YORK, 2026, 10, 31, 12, 0), time(1, 30), datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),  # the EDT one
])
def test_a_local_time_that_is_skipped_or_repeated_gives_one_instant(after, at_time, expected_utc):
    assert next_business_slot(after, after.tzinfo, at_time, EVERY_DAY) == expected_utc


def test_a_night_policy_time_in_the_spring_gap_plans_once():
    policy = Policy(thank_you_time=time(2, 30), send_window_start=time(0, 0), send_window_end=time(23, 59),
                    business_days=range(7), min_hours_after_meeting=0)
    emails = plan_for(policy, meeting_at=at(ROME, 2026, 3, 28, 12, 0))
    assert only(emails, "thank_you").due_at == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------- outcomes


@pytest.mark.parametrize("outcome, cause, kinds", [
    ("lost", "external", ["rep_summary", "thank_you", "recontact"]),
    ("lost", "internal", ["rep_summary", "thank_you", "debrief_reminder"]),
    ("lost", "unknown", ["rep_summary", "thank_you", "debrief_reminder"]),
    ("lost", None, ["rep_summary", "thank_you", "debrief_reminder"]),
    ("won", None, ["rep_summary", "thank_you"]),
    ("won", "external", ["rep_summary", "thank_you"]),
    ("unknown", None, ["rep_summary"]),
    ("unknown", "internal", ["rep_summary"]),
])
def test_each_outcome_and_cause_gets_its_emails(outcome, cause, kinds):
    assert [email.kind for email in plan_for(outcome=outcome, cause=cause)] == kinds


@pytest.mark.parametrize("outcome", ["won", "lost"])
def test_thank_you_variant_is_the_outcome(outcome):
    assert only(plan_for(outcome=outcome), "thank_you").variant == outcome


@pytest.mark.parametrize("outcome, cause, noemail", [
    ("won", None, False), ("lost", "external", False), ("lost", "internal", True), ("unknown", None, True),
])
def test_rep_summary_goes_to_the_rep_exactly_now(outcome, cause, noemail):
    now = at(NEW_YORK, 2026, 5, 12, 9, 0, 7, 123456)
    email = only(plan_for(now=now, outcome=outcome, cause=cause, noemail=noemail), "rep_summary")
    assert (email.to, email.due_at, email.variant, email.canceled_reason) == (None, now, "default", None)


@pytest.mark.parametrize("meeting, policy, expected", [
    (at(ROME, 2026, 5, 12, 15, 0), Policy(), "Fri 2026-05-15 09:30"),
    (at(ROME, 2026, 5, 14, 15, 0), Policy(), "Tue 2026-05-19 09:30"),
    (at(ROME, 2026, 5, 15, 15, 0), Policy(), "Wed 2026-05-20 09:30"),
    (at(ROME, 2026, 5, 16, 15, 0), Policy(), "Wed 2026-05-20 09:30"),  # Saturday: Monday is day one
    (at(ROME, 2026, 4, 29, 15, 0), Policy(holiday_country="IT"), "Tue 2026-05-05 09:30"),  # 1 May skipped
    (at(ROME, 2026, 5, 15, 15, 0), Policy(debrief_reminder_business_days=1), "Mon 2026-05-18 09:30"),
    (at(ROME, 2026, 5, 12, 15, 0), Policy(thank_you_time=time(11, 15)), "Fri 2026-05-15 11:15"),
])
def test_debrief_reminder_comes_after_business_days_at_the_thank_you_hour(meeting, policy, expected):
    email = only(plan_for(policy, meeting_at=meeting, cause="internal"), "debrief_reminder")
    assert (local(email.due_at), email.to, email.variant) == (expected, None, "default")


def test_a_late_read_gives_the_rep_the_full_debrief_days_from_now():
    emails = plan_for(meeting_at=at(ROME, 2026, 5, 8, 15, 0), now=at(ROME, 2026, 5, 18, 14, 0), cause="unknown")
    assert local(only(emails, "debrief_reminder").due_at) == "Thu 2026-05-21 09:30"


@pytest.mark.parametrize("outcome, cause, kinds", [
    ("lost", "external", ["rep_summary"]),
    ("lost", "internal", ["rep_summary", "debrief_reminder"]),
    ("won", None, ["rep_summary"]),
])
def test_noemail_writes_to_no_customer(outcome, cause, kinds):
    assert [email.kind for email in plan_for(outcome=outcome, cause=cause, noemail=True)] == kinds


def test_blocked_customers_are_planned_but_born_canceled():
    customers = (CustomerFacts(ADA), CustomerFacts("gone@customer.example", blocked="undeliverable"),
                 CustomerFacts("stop@customer.example", blocked="suppressed"))
    emails = plan_for(customers=customers)
    assert [(email.kind, email.to, email.canceled_reason) for email in emails[1:]] == [
        ("thank_you", ADA, None), ("recontact", ADA, None),
        ("thank_you", "gone@customer.example", "undeliverable"), ("recontact", "gone@customer.example", "undeliverable"),
        ("thank_you", "stop@customer.example", "suppressed"), ("recontact", "stop@customer.example", "suppressed"),
    ]
    assert len({email.due_at for email in emails if email.kind == "thank_you"}) == 1


def test_the_same_address_twice_is_one_customer():
    customers = (CustomerFacts("Ada@Customer.example"), CustomerFacts(ADA), CustomerFacts("bob@customer.example"))
    emails = plan_for(customers=customers)
    assert [email.to for email in emails if email.kind == "thank_you"] == ["Ada@Customer.example",
                                                                           "bob@customer.example"]


@pytest.mark.parametrize("changes, now, message", [
    ({"meeting_at": datetime(2026, 5, 12, 15, 0)}, None, "meeting_at"),
    ({}, datetime(2026, 5, 12, 15, 0), "now"),
    ({"outcome": "maybe"}, None, "outcome"),
    ({"cause": "weather"}, None, "cause"),
    ({"rep_timezone": "Mars/Olympus"}, None, "rep_timezone"),
])
def test_bad_facts_raise_value_error(changes, now, message):
    with pytest.raises(ValueError, match=message):
        plan(facts(**changes), Policy(), now or MEETING)


# ---------------------------------------------------------------------------------------------------- calendar


@pytest.mark.parametrize("policy, day, expected", [
    (Policy(), date(2026, 5, 11), True),
    (Policy(), date(2026, 5, 16), False),  # Saturday
    (Policy(), date(2026, 5, 17), False),  # Sunday
    (Policy(), date(2026, 12, 8), True),  # no calendar: a holiday is a weekday like any other
    (Policy(holiday_country="IT"), date(2026, 12, 8), False),
    (Policy(holiday_country="IT"), date(2025, 12, 26), False),
    (Policy(holiday_country="IT"), date(2026, 11, 26), True),
    (Policy(holiday_country="GB"), date(2025, 12, 26), False),
    (Policy(holiday_country="GB"), date(2026, 12, 28), False),  # Boxing Day observed
    (Policy(holiday_country="GB"), date(2026, 1, 2), True),
    (Policy(holiday_country="GB-SCT"), date(2026, 1, 2), False),  # Scotland's 2nd January
    (Policy(holiday_country="US"), date(2026, 11, 26), False),  # Thanksgiving
    (Policy(holiday_country="US"), date(2026, 11, 27), True),
    (Policy(extra_holidays=(date(2026, 8, 14),)), date(2026, 8, 14), False),
    (Policy(business_days=(0, 1, 2, 3, 4, 5)), date(2026, 5, 16), True),
])
def test_is_business_day(policy, day, expected):
    assert is_business_day(day, policy) is expected


def test_is_business_day_refuses_a_datetime():
    with pytest.raises(TypeError):
        is_business_day(MEETING, Policy())


@pytest.mark.parametrize("after, expected", [
    (at(ROME, 2026, 5, 13, 9, 30), "Wed 2026-05-13 09:30"),  # exactly on the slot
    (at(ROME, 2026, 5, 13, 9, 31), "Thu 2026-05-14 09:30"),
    (at(ROME, 2026, 5, 15, 9, 31), "Mon 2026-05-18 09:30"),
    (at(ROME, 2026, 5, 16, 8, 0), "Mon 2026-05-18 09:30"),
    (at(TOKYO, 2026, 5, 13, 1, 0), "Wed 2026-05-13 09:30"),  # Tuesday 18:00 in Rome
])
def test_next_business_slot(after, expected):
    slot = next_business_slot(after, ROME, time(9, 30), Policy())
    assert (local(slot), slot.tzinfo) == (expected, UTC)


def test_next_business_slot_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="after"):
        next_business_slot(datetime(2026, 5, 13, 9, 0), ROME, time(9, 30), Policy())


@pytest.mark.parametrize("reasons, expected", [
    ((), "default"), (("budget",), "budget"), (("timing",), "timing"), (("timing", "budget"), "budget"),
    (("budget", "consult"), "consult"), (("no_need", "price"), "default"), (["consult"], "consult"),
    ("budget", "budget"), (iter(["timing", "other"]), "timing"),
])
def test_recontact_variant(reasons, expected):
    assert recontact_variant(reasons) == expected


# ---------------------------------------------------------------------------------------------------- Policy


def test_policy_defaults_as_json():
    assert Policy().to_dict() == {
        "thank_you_time": "09:30", "min_hours_after_meeting": 3.0, "send_window_start": "09:00",
        "send_window_end": "18:00", "business_days": [0, 1, 2, 3, 4], "holiday_country": None,
        "extra_holidays": [], "recontact_time": "10:00",
        "reason_delays": {"budget": 90, "timing": 60, "consult": 14, "no_need": 180},
        "default_recontact_days": 90, "debrief_reminder_business_days": 3, "confirmation": "unsure",
    }


@pytest.mark.parametrize("policy", [
    Policy(),
    Policy(thank_you_time=time(8, 45), send_window_start=time(8, 0), send_window_end=time(17, 30),
           recontact_time=time(11, 0), min_hours_after_meeting=0.5, business_days=(0, 1, 2, 3),
           holiday_country="GB-SCT", extra_holidays=(date(2026, 12, 24), date(2026, 12, 31)),
           reason_delays={"budget": 120, "price": 30}, default_recontact_days=30, debrief_reminder_business_days=5),
    Policy(holiday_country="US", reason_delays={}),
])
def test_policy_round_trips_through_json(policy):
    stored = json.loads(json.dumps(policy.to_dict()))
    assert Policy.from_dict(stored) == policy
    assert Policy.from_dict(stored).to_dict() == stored


def test_from_dict_ignores_unknown_keys_and_defaults_missing_ones():
    assert Policy.from_dict({}) == Policy()
    assert Policy.from_dict({"thank_you_time": "10:15", "a_future_setting": 1}) == Policy(thank_you_time=time(10, 15))


def test_policy_normalises_what_it_is_given():
    policy = Policy.from_dict({"business_days": [4, 0, 2, 0], "holiday_country": " gb-eng ",
                               "extra_holidays": ["2026-12-31", "2026-12-24", "2026-12-31"]})
    assert (policy.business_days, policy.holiday_country, policy.extra_holidays) == \
        ((0, 2, 4), "GB-ENG", (date(2026, 12, 24), date(2026, 12, 31)))


def test_policy_is_immutable_and_hashable():
    delays = {"budget": 30}
    policy = Policy(reason_delays=delays)
    delays["budget"] = 1
    assert policy.reason_delays["budget"] == 30
    with pytest.raises(TypeError):
        policy.reason_delays["budget"] = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.thank_you_time = time(7, 0)
    assert hash(policy) == hash(Policy(reason_delays={"budget": 30}))


@pytest.mark.parametrize("data, field", [
    ({"thank_you_time": "9.30"}, "thank_you_time"),
    ({"thank_you_time": "25:00"}, "thank_you_time"),
    ({"thank_you_time": 930}, "thank_you_time"),
    ({"thank_you_time": "09:30:15"}, "thank_you_time"),
    ({"thank_you_time": None}, "thank_you_time"),
    ({"thank_you_time": "08:00"}, "thank_you_time"),  # outside the send window
    ({"recontact_time": "19:00"}, "recontact_time"),
    ({"send_window_start": "18:00", "send_window_end": "09:00"}, "send_window_start"),
    ({"send_window_end": "9pm"}, "send_window_end"),
    ({"min_hours_after_meeting": -1}, "min_hours_after_meeting"),
    ({"min_hours_after_meeting": "3"}, "min_hours_after_meeting"),
    ({"min_hours_after_meeting": float("nan")}, "min_hours_after_meeting"),
    ({"min_hours_after_meeting": True}, "min_hours_after_meeting"),
    ({"business_days": []}, "business_days"),
    ({"business_days": [7]}, "business_days"),
    ({"business_days": ["mon"]}, "business_days"),
    ({"business_days": "01234"}, "business_days"),
    ({"business_days": [True]}, "business_days"),
    ({"business_days": 5}, "business_days"),
    ({"holiday_country": "XX"}, "holiday_country"),
    ({"holiday_country": "GB-XYZ"}, "holiday_country"),
    ({"holiday_country": ""}, "holiday_country"),
    ({"holiday_country": 39}, "holiday_country"),
    ({"extra_holidays": ["2026-13-01"]}, "extra_holidays"),
    ({"extra_holidays": ["yesterday"]}, "extra_holidays"),
    ({"extra_holidays": "2026-12-24"}, "extra_holidays"),
    ({"extra_holidays": [datetime(2026, 12, 24, 9, 0)]}, "extra_holidays"),
    ({"reason_delays": {"budget": -1}}, "reason_delays"),
    ({"reason_delays": {"budgett": 90}}, "reason_delays"),
    ({"reason_delays": {"budget": "90"}}, "reason_delays"),
    ({"reason_delays": {"budget": True}}, "reason_delays"),
    ({"reason_delays": {"budget": 4000}}, "reason_delays"),
    ({"reason_delays": [["budget", 90]]}, "reason_delays"),
    ({"default_recontact_days": 0}, "default_recontact_days"),
    ({"default_recontact_days": 1.5}, "default_recontact_days"),
    ({"default_recontact_days": "90"}, "default_recontact_days"),
    ({"debrief_reminder_business_days": 0}, "debrief_reminder_business_days"),
    ({"debrief_reminder_business_days": None}, "debrief_reminder_business_days"),
])
def test_from_dict_rejects_junk_naming_the_field(data, field):
    with pytest.raises(ValueError, match=field):
        Policy.from_dict(data)


@pytest.mark.parametrize("data", ["junk", None, [["thank_you_time", "09:30"]]])
def test_from_dict_wants_a_json_object(data):
    with pytest.raises(ValueError, match="policy"):
        Policy.from_dict(data)



@pytest.mark.parametrize(("held", "expected"), [
    ((), {"rep_summary": False, "thank_you": False, "recontact": False}),
    (("recontact",), {"rep_summary": False, "thank_you": False, "recontact": True}),  # an unsure cause
    (("thank_you", "recontact"), {"rep_summary": False, "thank_you": True, "recontact": True}),
])
def test_held_kinds_wait_for_the_rep_and_rep_emails_never_do(held, expected):
    assert {email.kind: email.held for email in plan_for(held=held)} == expected


# ---- the rep's word first -----------------------------------------------------------------------------------

@pytest.mark.parametrize("cause", ["internal", "unknown", None])
def test_a_recontact_the_rep_asked_for_is_planned_whatever_the_cause_and_the_debrief_is_still_asked(cause):
    emails = plan_for(cause=cause, reasons=("unconvinced",), recontact_on=date(2026, 9, 1), recontact_asked=True)
    kinds = [e.kind for e in emails]
    assert kinds == ["rep_summary", "thank_you", "recontact", "debrief_reminder"]
    [recontact] = [e for e in emails if e.kind == "recontact"]
    assert recontact.due_at.astimezone(ROME).date() == date(2026, 9, 1)  # a Tuesday: the date the rep gave


def test_a_date_the_rep_did_not_ask_for_plans_no_recontact_on_an_internal_loss():
    emails = plan_for(cause="internal", reasons=("unconvinced",), recontact_on=date(2026, 9, 1))
    assert "recontact" not in [e.kind for e in emails]


def test_noemail_beats_the_reps_recontact():
    emails = plan_for(cause="internal", recontact_on=date(2026, 9, 1), recontact_asked=True, noemail=True)
    assert [e.kind for e in emails] == ["rep_summary", "debrief_reminder"]


def test_an_unsure_cause_does_not_hold_a_recontact_the_rep_asked_for():
    assert hold_for(Policy(), ["cause"], "lost", recontact_asked=True) is None
    assert hold_for(Policy(), ["cause"], "lost").kinds == ("recontact",)
    assert hold_for(Policy(), ["outcome"], "lost", recontact_asked=True).kinds == ("thank_you", "recontact")
