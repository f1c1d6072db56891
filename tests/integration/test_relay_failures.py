"""SMTP refusals judged by where they happen: only a recipient refused at RCPT with 5.1.x / 5.2.1 condemns the
customer's address; a relay that refuses our sender, our login or the message fails the email, keeps the customer,
alerts the admin, and the admin sends it again once the relay is fixed.

A real aiosmtpd relay of the test's own (the devstack catcher's handler, answering as told at MAIL, RCPT or DATA,
and one that wants a login), real Redis + RQ, the test database.
"""
# ruff: noqa: F811  (the admin fixtures are imported from test_admin and named as test parameters)

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlmodel import Session, select

from service import context
from service.models import Customer, OutboundEmail
from service.outbox import schedule, sender
from service.outbox.actions import clear_undeliverable, retry_failed, send_now
from service.outbox.rows import new_outbound
from service.run.devstack.servers import free_port
from service.run.devstack.smtp import _Handler
from tests.integration.test_admin import _fresh_throttles, admin, csrf_token, logged_in  # noqa: F401
from tests.integration.test_outbox import _due_rows, rows, work

RELAY_REFUSALS = [
    ("MAIL", "550 5.7.1 <followup@acme.example>: Sender address rejected: not owned by user"),
    ("DATA", "554 5.6.0 Message content rejected"),
    # Postfix checks the sender at RCPT (smtpd_delay_reject): a 5.1.0 that is about *our* address.
    ("RCPT", "550 5.1.0 <followup@acme.example>: Sender address rejected: User unknown"),
    ("RCPT", "554 5.7.1 <c0@client.example>: Relay access denied"),
    ("RCPT", "550 mailbox unavailable"),  # no enhanced status: too little to drop a customer
]


@dataclass
class _Refusing(_Handler):
    """The catcher's handler, refusing whole commands as told: {"MAIL" | "DATA": reply}; RCPT per address."""

    refusals: dict[str, str] = field(default_factory=dict)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if "MAIL" in self.refusals:
            return self.refusals["MAIL"]
        envelope.mail_from, envelope.mail_options = address, list(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if "DATA" in self.refusals:
            return self.refusals["DATA"]
        return await super().handle_DATA(server, session, envelope)


class Relay:
    """An aiosmtpd relay on loopback; with `login`, it refuses MAIL until that user and password log in."""

    def __init__(self, login: tuple[str, str] | None = None):
        self.handler, self.port = _Refusing(None), free_port()
        options = {"auth_required": True, "auth_require_tls": False, "authenticator": self._check} if login else {}
        self.login = login
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **options)

    def _check(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        given = (auth_data.login.decode(), auth_data.password.decode())
        return AuthResult(success=given == self.login, handled=False)  # False: aiosmtpd answers 535 itself

    def url(self, user: str = "", password: str = "") -> str:
        return f"smtp://{user}:{password}@127.0.0.1:{self.port}" if user else f"smtp://127.0.0.1:{self.port}"

    def refuse(self, command: str, reply: str) -> None:
        if command == "RCPT":
            self.handler.scripts["c0@client.example"] = [reply]
        else:
            self.handler.refusals[command] = reply

    def fix(self) -> None:
        self.handler.refusals.clear()
        self.handler.scripts.clear()


@pytest.fixture
def relay():
    server = Relay()
    server._controller.start()
    yield server
    server._controller.stop()


@pytest.fixture
def locked_relay():
    server = Relay(login=("keepwarm", "right"))
    server._controller.start()
    yield server
    server._controller.stop()


def _use(settings, url: str) -> None:
    context.configure(settings.with_overrides(smtp_url=url, smtp_connections=1))


def _later_recontact(engine, settings, customer_email: str) -> int:
    """A recontact for the customer, due in a month: what marking them undeliverable would cancel."""
    with Session(engine) as session:
        customer = session.exec(select(Customer).where(Customer.email == customer_email)).one()
        first = session.exec(select(OutboundEmail).where(OutboundEmail.customer_id == customer.id)).first()
        row = new_outbound(settings, kind="recontact", variant="budget", rep=_rep(session, first.rep_id),
                           to_address=customer.email, to_name=customer.name,
                           due_at=datetime.now(UTC) + timedelta(days=30), outcome_id=None, language="en",
                           customer_id=customer.id)
        session.add(row)
        session.commit()
        return row.id


def _rep(session, rep_id: int):
    from service.models import Rep

    return session.get(Rep, rep_id)


def _undeliverable(engine, email: str) -> bool:
    with Session(engine) as session:
        return session.exec(select(Customer).where(Customer.email == email)).one().undeliverable


def _send_due(ids: list[int]) -> None:
    schedule.enqueue_sends(context.current(), [(outbound_id, datetime.now(UTC)) for outbound_id in ids])


def _defects(raw: bytes) -> list:
    return [d for part in message_from_bytes(raw, policy=policy.default).walk() for d in part.defects]


@pytest.mark.parametrize(("command", "reply"), RELAY_REFUSALS, ids=[f"{c}-{r[:3]}" for c, r in RELAY_REFUSALS])
def test_a_relay_refusal_fails_the_email_keeps_the_customer_and_alerts_the_admin(
        engine, settings, reps, redis, relay, command, reply, caplog):
    _use(settings, relay.url())
    first, second = _due_rows(engine, settings, 2)
    later = _later_recontact(engine, settings, "c0@client.example")
    relay.refuse(command, reply)
    _send_due([first, second] if command != "RCPT" else [first])
    with caplog.at_level(logging.ERROR, logger="service.outbox.sender"):
        work(redis)
    failed = rows(engine, id=first)[0]
    assert (failed.status, failed.failure) == ("failed", "relay")
    assert failed.last_error.startswith(reply) and "relay refused" in failed.last_error
    assert not _undeliverable(engine, "c0@client.example")
    assert rows(engine, id=later)[0].status == "scheduled"  # nothing of the customer's canceled
    assert rows(engine, kind="rep_notice") == []  # the rep is not told a good address is bad
    assert any("failed at the relay" in r.getMessage() and str(first) in r.getMessage()
               for r in caplog.records if r.levelno == logging.ERROR)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_530_at_mail_without_a_login_and_535_at_auth_with_a_wrong_one_keep_the_customer(
        engine, settings, reps, redis, locked_relay):
    ids = _due_rows(engine, settings, 2, when=datetime.now(UTC) + timedelta(hours=1))
    for outbound_id, url, answer in ((ids[0], locked_relay.url(), "530"),
                                     (ids[1], locked_relay.url("keepwarm", "expired"), "535")):
        _use(settings, url)
        send_now(context.current(), outbound_id)
        work(redis)
        failed = rows(engine, id=outbound_id)[0]
        assert (failed.status, failed.failure) == ("failed", "relay"), url
        assert failed.last_error.startswith(answer) and "KEEPWARM_SMTP_URL" in failed.last_error
        assert not _undeliverable(engine, failed.to_address)
    _use(settings, locked_relay.url("keepwarm", "right"))  # the password is fixed
    assert retry_failed(context.current()) == "2 emails failed by the relay scheduled to send again now"
    work(redis)
    assert {r.status for r in rows(engine)} == {"sent"}
    assert sorted(c.recipients[0] for c in locked_relay.handler.caught) == ["c0@client.example", "c1@client.example"]


def test_only_a_recipient_refused_at_rcpt_with_5_1_1_marks_the_customer_and_a_retry_leaves_it(
        engine, settings, reps, redis, relay):
    _use(settings, relay.url())
    first, second = _due_rows(engine, settings, 2)
    later = _later_recontact(engine, settings, "c0@client.example")
    relay.refuse("RCPT", "550 5.1.1 <c0@client.example>: Recipient address rejected: User unknown")
    _send_due([first, second])
    work(redis)
    failed = rows(engine, id=first)[0]
    assert (failed.status, failed.failure) == ("failed", "address") and failed.last_error.startswith("550 5.1.1")
    assert _undeliverable(engine, "c0@client.example")
    assert (rows(engine, id=later)[0].status, rows(engine, id=later)[0].canceled_reason) == ("canceled",
                                                                                          "undeliverable")
    assert [r.status for r in rows(engine, kind="rep_notice")] == ["sent"]
    assert retry_failed(context.current()).startswith("0 emails")  # not the relay's fault: nothing to retry
    assert all(_defects(c.raw) == [] for c in relay.handler.caught)
    # The customer fixed their mailbox: an admin clears the mark, the recontact still to come is back.
    assert clear_undeliverable(context.current(), email="C0@client.example") == (
        "c0@client.example is deliverable again; 1 emails still to come scheduled again")
    assert not _undeliverable(engine, "c0@client.example")
    assert (rows(engine, id=later)[0].status, rows(engine, id=first)[0].status) == ("scheduled", "failed")
    assert "nothing to do" in clear_undeliverable(context.current(), email="c0@client.example")


def test_the_admin_sees_relay_failures_on_the_home_page_and_retries_them_once_the_relay_is_fixed(
        logged_in, engine, settings, redis, relay):
    _use(settings, relay.url())
    ids = _due_rows(engine, settings, 3)
    relay.refuse("MAIL", "550 5.7.1 Sender address rejected")
    _send_due(ids)
    work(redis)
    assert {(r.status, r.failure) for r in rows(engine)} == {("failed", "relay")}
    home = logged_in.get("/admin/")
    assert "<strong>3</strong>emails failed at the SMTP relay" in home.text
    outbox = logged_in.get("/admin/outbox?status=failed")
    assert "3 emails failed at the SMTP relay" in outbox.text and "Sender address rejected" in outbox.text
    relay.fix()
    token = csrf_token(logged_in, "/admin/outbox?status=failed")
    assert logged_in.post("/admin/outbox/retry-failed", data={}).status_code == 400  # CSRF
    assert {r.status for r in rows(engine)} == {"failed"}
    response = logged_in.post("/admin/outbox/retry-failed", data={"csrf_token": token})
    assert response.status_code == 302
    work(redis)
    assert {(r.status, r.failure, r.attempts) for r in rows(engine)} == {("sent", None, 1)}
    assert sorted(c.recipients[0] for c in relay.handler.caught) == [f"c{n}@client.example" for n in range(3)]
    assert all(_defects(c.raw) == [] for c in relay.handler.caught)
    assert "<strong>0</strong>emails failed at the SMTP relay" in logged_in.get("/admin/").text


def test_an_admin_clears_an_undeliverable_mark_on_the_suppression_page(logged_in, engine, settings, redis, relay):
    _use(settings, relay.url())
    [outbound_id] = _due_rows(engine, settings, 1)
    later = _later_recontact(engine, settings, "c0@client.example")
    relay.refuse("RCPT", "550 5.1.1 no such user")
    _send_due([outbound_id])
    work(redis)
    page = logged_in.get("/admin/suppression")
    assert "c0@client.example" in page.text and "550 5.1.1 no such user" in page.text
    with Session(engine) as session:
        customer_id = session.exec(select(Customer.id).where(Customer.email == "c0@client.example")).one()
    token = csrf_token(logged_in, "/admin/suppression")
    response = logged_in.post(f"/admin/customers/{customer_id}/deliverable", data={"csrf_token": token})
    assert response.status_code == 302
    assert not _undeliverable(engine, "c0@client.example")
    assert rows(engine, id=later)[0].status == "scheduled"
    assert "No customer is marked undeliverable" in logged_in.get("/admin/suppression").text


@pytest.mark.slow
def test_the_cli_retries_relay_failures_and_clears_a_mark(engine, settings, reps, redis, relay, tmp_path):
    _use(settings, relay.url())
    ids = _due_rows(engine, settings, 2)
    relay.refuse("DATA", "554 5.6.0 Message content rejected")
    _send_due(ids)
    work(redis)
    with Session(engine) as session:  # as the old code left a customer of a relay failure
        customer = session.exec(select(Customer).where(Customer.email == "c1@client.example")).one()
        customer.undeliverable, customer.undeliverable_reason = True, "554 at DATA"
        session.commit()
    relay.fix()
    env = {**os.environ, "KEEPWARM_DATABASE_URL": settings.database_url, "KEEPWARM_REDIS_URL": settings.redis_url,
           "KEEPWARM_SMTP_URL": relay.url(), "KEEPWARM_INTAKE_ADDRESS": settings.intake_address,
           "KEEPWARM_INSTANCE_DIR": str(tmp_path), "KEEPWARM_SECRET_KEY": "test-secret-0123456789abcdef"}

    def keepwarm(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "service.cli", *args], env=env, capture_output=True, text=True,
                              timeout=120, check=True).stdout

    assert "c1@client.example is deliverable again" in keepwarm("customers", "deliverable", "c1@client.example")
    assert "2 emails failed by the relay scheduled to send again now" in keepwarm("outbox", "retry-failed")
    work(redis)
    assert {r.status for r in rows(engine)} == {"sent"} and len(relay.handler.caught) == 2


def test_the_worker_sends_on_after_a_relay_refusal_of_one_email(engine, settings, reps, redis, relay):
    """A refusal at RCPT for one address (not a 5.1.x) fails that email only; the drain goes on."""
    _use(settings, relay.url())
    ids = _due_rows(engine, settings, 3)
    relay.refuse("RCPT", "554 5.7.1 Relay access denied")
    _send_due(ids)
    sender.drain(context.current())
    assert [(r.status, r.failure) for r in rows(engine)] == [("failed", "relay"), ("sent", None), ("sent", None)]
