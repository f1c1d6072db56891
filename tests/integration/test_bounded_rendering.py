"""The sender renders every email under the preview's time and memory bounds: a saved template that is slow for
one customer fails that email (the version marked broken, shown on the templates page) and the worker sends the
next ones with the previous version or the shipped default.

Real Redis + RQ (SimpleWorker in this process, as the other sending tests), real SMTP (aiosmtpd), the test database.
"""

from __future__ import annotations

import os
import select as io_select
from email import message_from_bytes, policy

import pytest
from sqlmodel import Session, select

from service import context
from service.models import Customer, EmailTemplate
from service.outbox import schedule
from service.outbox.templates import (
    RENDER_SECONDS,
    BoundedRenderer,
    RenderError,
    RenderLimitError,
    TemplateSource,
    check_source,
    default_source,
    sample_context,
)
from service.web.admin.catalog import find_key, overview
from tests.integration.test_outbox import _due_rows, rows, work

# Passes every save check (the samples are other customers), then spins for one customer only.
SLOW_FOR_ONE = ("{% if customer.email == 'c0@client.example' %}{% for a in range(100000) %}"
                "{% for b in range(100000) %}{% endfor %}{% endfor %}{% endif %}"
                "Dear {{ customer.name }}, thank you (version 2).\n")
# Doubles a string until the child's memory cap stops it (never run outside the capped child).
MEMORY_BOMB = "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}"


def _save_version(engine, text: str) -> None:
    with Session(engine) as session:
        session.add(EmailTemplate(kind="thank_you", variant="lost", language="en", version=2, subject="Thank you",
                                  text=text, html="", author="admin@acme.example"))
        session.commit()


def _body(caught) -> str:
    message = message_from_bytes(caught.raw, policy=policy.default)
    assert [d for part in message.walk() for d in part.defects] == []
    return message.get_body(("plain",)).get_content()


@pytest.mark.slow
def test_a_template_slow_for_one_customer_fails_that_email_and_the_worker_sends_the_next(
        engine, settings, reps, redis, smtp, monkeypatch):
    # Before the bound, this email spun until RQ's job timeout (120 s); a shorter one makes the old failure quick.
    monkeypatch.setattr(schedule, "SEND_TIMEOUT", 30)
    samples = [("full", sample_context("thank_you", "lost")), ("sparse", sample_context("thank_you", "lost",
                                                                                          sparse=True))]
    assert check_source(TemplateSource("Thank you", SLOW_FOR_ONE, ""), samples) == []
    _save_version(engine, SLOW_FOR_ONE)
    ids = _due_rows(engine, settings, 3)
    schedule.enqueue_sends(context.current(), [(outbound_id, row.due_at) for outbound_id, row in
                                               zip(ids, rows(engine), strict=True)])
    work(redis)
    slow, *others = rows(engine)
    assert (slow.status, slow.failure) == ("failed", "template")
    assert f"longer than {RENDER_SECONDS:g} s" in slow.last_error and "thank_you/lost/en v2" in slow.last_error
    assert [r.status for r in others] == ["sent", "sent"]
    assert sorted(c.recipients[0] for c in smtp.caught) == ["c1@client.example", "c2@client.example"]
    for caught in smtp.caught:  # the broken version is skipped: the next emails use the shipped default
        assert "(version 2)" not in _body(caught) and "Thank you for meeting me" in _body(caught)
    with Session(engine) as session:
        version = session.exec(select(EmailTemplate).where(EmailTemplate.version == 2)).one()
        assert version.broken_at is not None and "c0@client.example" in version.last_error
        [current] = [v for key, v, _count in overview(session) if key == find_key("thank_you", "lost", "en")]
        assert current.number == 2 and "longer than" in current.last_error  # the templates page shows it
        assert not session.exec(select(Customer).where(Customer.email == "c0@client.example")).one().undeliverable


def test_the_senders_renderer_stops_a_memory_bomb_under_the_preview_cap_and_renders_on():
    renderer = BoundedRenderer()
    context = sample_context("thank_you", "lost")
    try:
        with pytest.raises(RenderLimitError, match="MemoryError|memory"):
            renderer(TemplateSource("Hi", MEMORY_BOMB, ""), context)
        with pytest.raises(RenderError) as plain:  # an ordinary template error is not a bound
            renderer(TemplateSource("Hi", "{{ 1 / 0 }}", ""), context)
        assert not isinstance(plain.value, RenderLimitError)
        subject, text, html = renderer(default_source("thank_you", "lost", "en"), context)
        assert "Jane" in text and html
    finally:
        renderer.close()


def test_the_renderer_child_keeps_none_of_the_parents_pipes_open():
    """A long-lived child holding a copy of the parent's pipes keeps them open after the parent closes them: a
    browser driver then waits for ever for its pipe to end (it hung the suite's teardown)."""
    read_end, write_end = os.pipe()
    renderer = BoundedRenderer()
    try:
        assert renderer(TemplateSource("Hi", "Hello {{ customer.email }}", ""), sample_context("thank_you"))[1]
        os.close(write_end)
        ready, _, _ = io_select.select([read_end], [], [], 5)
        assert ready and os.read(read_end, 1) == b""  # end of file: nobody else holds the write end
    finally:
        renderer.close()
        os.close(read_end)
