"""Retention and data-subject requests on real data (ingested through the real pipeline)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from service.customers.privacy import export_customer, forget_customer, purge_raw
from service.models import Customer, InboundMessage, OutboundEmail, Outcome, Suppression
from service.pipeline.polling import poller
from tests.mail import recap

LOST = "Hi Jane,\n\nthanks for today. I understand the budget isn't there until next April.\n\nTom\n"


def _ingest(imap, settings, engine):
    imap.append("INBOX", recap(1, body=LOST))
    imap.append("INBOX", recap(2, body=LOST, to="Bob <bob@initech.example>"))
    poller(settings, engine).poll_once()


def test_retention_deletes_old_raw_bodies_and_keeps_the_reading(imap, settings, engine, reps):
    _ingest(imap, settings, engine)
    assert purge_raw(engine, 30) == 0
    assert purge_raw(engine, 30, now=datetime.now(UTC) + timedelta(days=31)) == 2
    with Session(engine) as session:
        rows = list(session.exec(select(InboundMessage)))
    assert all(r.raw is None and r.reading["outcome"] == "lost" for r in rows)
    assert purge_raw(engine, 0, now=datetime.now(UTC) + timedelta(days=999)) == 0


def test_export_then_forget_a_customer(imap, settings, engine, reps):
    _ingest(imap, settings, engine)
    exported = export_customer(engine, "Jane@Globex.example")
    json.dumps(exported)  # JSON-ready
    assert exported["customer"]["email"] == "jane@globex.example"
    assert len(exported["inbound"]) == 1 and exported["emails"] and exported["outcomes"]
    summary = forget_customer(engine, "jane@globex.example")
    assert summary["messages_scrubbed"] == 1 and summary["emails_deleted"] >= 2
    with Session(engine) as session:
        assert session.exec(select(Customer).where(Customer.email == "jane@globex.example")).first() is None
        assert session.exec(select(OutboundEmail).where(OutboundEmail.to_address == "jane@globex.example")).all() == []
        assert session.exec(select(Suppression).where(Suppression.email == "jane@globex.example")).one()
        janes = [session.get(Outcome, o["id"]) for o in exported["outcomes"]]
        assert janes and all(o.note == "" and o.evidence == [] for o in janes)
        bob = session.exec(select(OutboundEmail).where(OutboundEmail.to_address == "bob@initech.example")).all()
    assert bob  # other customers are untouched
    after = export_customer(engine, "jane@globex.example")
    assert after["customer"] is None and after["inbound"] == [] and after["suppressed"]
