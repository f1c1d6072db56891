"""The poller against a private Dovecot: nothing lost, nothing doubled, poison quarantined, IDLE honoured."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter

import pytest
from imapclient import IMAPClient
from sqlmodel import Session, select

from service.context import Services
from service.intake import store as inbox_module
from service.intake.imap import NETWORK_ERRORS, PROCESSED, QUARANTINE, Mailbox
from service.intake.lock import PollerLock
from service.models import InboundMessage, MailboxState
from service.pipeline.polling import poller
from service.pipeline.process import record
from tests.mail import recap, wait_until


def _rows(engine) -> list[InboundMessage]:
    with Session(engine) as session:
        return list(session.exec(select(InboundMessage).order_by(InboundMessage.id)))


def _message_ids_in(imap, folder: str) -> list[str]:
    imap.select_folder(folder, readonly=True)
    uids = imap.search("ALL")
    if not uids:
        return []
    data = imap.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    return [d[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().split(":", 1)[1].strip() for d in data.values()]


def _append(imap, count: int, start: int = 0, folder: str = "INBOX") -> list[str]:
    ids = []
    for n in range(start, start + count):
        imap.append(folder, recap(n))
        ids.append(f"<recap-{n}@mail.acme.example>")
    return ids


def test_a_batch_ends_up_filed_once_each_and_a_second_poll_finds_nothing(imap, engine, settings, reps):
    sent = _append(imap, 25)
    mailbox = poller(settings.with_overrides(fetch_batch=7), engine)
    stats = mailbox.poll_once()
    assert (stats.fetched, stats.processed, stats.moved) == (25, 25, 25)
    assert _message_ids_in(imap, "INBOX") == []
    assert sorted(_message_ids_in(imap, PROCESSED)) == sorted(sent)
    rows = _rows(engine)
    assert sorted(r.message_id for r in rows) == sorted(sent)
    assert {r.status for r in rows} == {"processed"} and {r.folder for r in rows} == {PROCESSED}
    again = mailbox.poll_once()
    assert (again.fetched, again.moved) == (0, 0)
    assert len(_rows(engine)) == 25
    mailbox.close()


def test_the_gate_verdict_is_recorded_and_ignored_mail_is_filed_too(imap, engine, settings, reps):
    imap.append("INBOX", recap(1, sender="Stranger <someone@elsewhere.example>"))
    imap.append("INBOX", recap(2))
    imap.append("INBOX", recap(3))  # same Message-ID as a later copy below
    imap.append("INBOX", recap(3))
    poller(settings, engine).poll_once()
    verdicts = [(r.message_id, r.status, r.reason) for r in _rows(engine)]
    assert verdicts == [("<recap-1@mail.acme.example>", "ignored", "unknown_sender"),
                        ("<recap-2@mail.acme.example>", "processed", None),
                        ("<recap-3@mail.acme.example>", "processed", None),
                        ("<recap-3@mail.acme.example>", "ignored", "duplicate")]
    assert len(_message_ids_in(imap, PROCESSED)) == 4


class _CrashAfterBatches(Mailbox):
    """A poller that dies after committing `n` batches, as a killed process would."""

    def __init__(self, settings, engine, *, n: int):
        services = Services.with_engine(settings, engine)
        super().__init__(settings, engine, record=lambda readings: record(services, readings))
        self.remaining = n

    def _fetch_batch(self, *args):
        if self.remaining == 0:
            raise KeyboardInterrupt("killed mid-batch")
        self.remaining -= 1
        return super()._fetch_batch(*args)


def test_a_poller_killed_mid_batch_is_resumed_by_the_next_without_loss_or_double(imap, engine, settings, reps):
    sent = _append(imap, 20)
    small = settings.with_overrides(fetch_batch=6)
    with pytest.raises(KeyboardInterrupt):
        _CrashAfterBatches(small, engine, n=2).poll_once()
    assert len(_rows(engine)) == 12  # two committed batches, nothing of the third
    poller(small, engine).poll_once()
    rows = _rows(engine)
    assert Counter(r.message_id for r in rows) == Counter(sent)
    assert sorted(_message_ids_in(imap, PROCESSED)) == sorted(sent)


class _CuttingProxy:
    """A TCP proxy to Dovecot that cuts the connection after the server has sent `limit` bytes, once."""

    def __init__(self, port: int, limit: int):
        self.target, self.limit, self.cut = port, limit, False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, not self.cut), daemon=True).start()

    def _pipe(self, source, sink, counting):
        sent = 0
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                sent += len(data)
                if counting and sent > self.limit:
                    self.cut = True
                    break
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def test_a_connection_cut_mid_fetch_loses_and_doubles_nothing(imap, engine, settings, reps, dovecot, mailbox_user):
    sent = _append(imap, 40)
    proxy = _CuttingProxy(dovecot.port, limit=8_000)
    through_proxy = settings.with_overrides(imap_url=f"imap://{mailbox_user}:secret@127.0.0.1:{proxy.port}/INBOX",
                                            fetch_batch=10)
    mailbox = poller(through_proxy, engine)
    with pytest.raises(NETWORK_ERRORS):
        mailbox.poll_once()
    assert proxy.cut
    mailbox.close()
    poller(through_proxy, engine).poll_once()
    assert Counter(r.message_id for r in _rows(engine)) == Counter(sent)
    assert sorted(_message_ids_in(imap, PROCESSED)) == sorted(sent)


def test_uidvalidity_change_rescans_and_dedupes_by_message_id(imap, engine, settings, reps, mailbox_user, dovecot):
    imap.create_folder("Intake")
    _append(imap, 3, folder="Intake")
    intake = settings.with_overrides(imap_url=dovecot.url(mailbox_user, "Intake"))
    poller(intake, engine).poll_once()
    # The folder is recreated (a restore, a server move): new UIDVALIDITY, an old message comes back.
    imap.delete_folder("Intake")
    imap.create_folder("Intake")
    imap.append("Intake", recap(0))
    _append(imap, 2, start=10, folder="Intake")
    poller(intake, engine).poll_once()
    rows = _rows(engine)
    assert [(r.message_id, r.status, r.reason) for r in rows[3:]] == [
        ("<recap-0@mail.acme.example>", "ignored", "duplicate"),
        ("<recap-10@mail.acme.example>", "processed", None),
        ("<recap-11@mail.acme.example>", "processed", None)]
    with Session(engine) as session:
        states = list(session.exec(select(MailboxState)))
    assert len(states) == 1 and states[0].last_uid == 3
    assert _message_ids_in(imap, "Intake") == []


def test_a_poison_message_is_quarantined_after_three_tries_and_never_blocks_the_rest(
        imap, engine, settings, reps, monkeypatch):
    real_read = inbox_module.read_raw

    def read_or_choke(raw, *args, **kwargs):
        if b"POISON" in raw:
            raise UnicodeError("simulated reader bug")  # a bug cannot be summoned by real input on purpose
        return real_read(raw, *args, **kwargs)

    monkeypatch.setattr(inbox_module, "read_raw", read_or_choke)
    imap.append("INBOX", recap(1))
    imap.append("INBOX", recap(2, subject="POISON"))
    imap.append("INBOX", recap(3))
    mailbox = poller(settings, engine)
    first = mailbox.poll_once()
    assert (first.processed, first.failed) == (2, 1)
    assert sorted(_message_ids_in(imap, PROCESSED)) == ["<recap-1@mail.acme.example>", "<recap-3@mail.acme.example>"]
    assert _message_ids_in(imap, "INBOX") == ["<recap-2@mail.acme.example>"]
    imap.append("INBOX", recap(4))
    mailbox.poll_once()
    mailbox.poll_once()
    assert _message_ids_in(imap, QUARANTINE) == ["<recap-2@mail.acme.example>"]
    poison = [r for r in _rows(engine) if r.message_id == "<recap-2@mail.acme.example>"][0]
    assert (poison.status, poison.attempts) == ("quarantined", 3)
    assert poison.reason.startswith("failed 3 times: UnicodeError: simulated reader bug")
    assert "<recap-4@mail.acme.example>" in _message_ids_in(imap, PROCESSED)


@pytest.mark.slow
def test_a_huge_mail_is_read_and_one_over_the_limit_is_quarantined_unread(imap, engine, settings, reps):
    filler = ("x" * 76 + "\n") * (20 * 1024 * 1024 // 77)
    imap.append("INBOX", recap(1, body="Lost for now, budget frozen until March.\n\n" + filler))
    imap.append("INBOX", recap(2))
    poller(settings.with_overrides(max_message_bytes=30 * 1024 * 1024), engine).poll_once()
    big = _rows(engine)[0]
    assert big.size > 20 * 1024 * 1024 and big.status == "processed"
    imap.append("INBOX", recap(3, body="y" * 2_000_000))
    poller(settings.with_overrides(max_message_bytes=1_000_000), engine).poll_once()
    over = _rows(engine)[-1]
    assert over.status == "quarantined" and over.reason.startswith("too_large")
    assert _message_ids_in(imap, QUARANTINE) == ["<recap-3@mail.acme.example>"]


@pytest.mark.slow
def test_mail_appended_while_idling_is_picked_up_within_seconds(imap, engine, settings, reps, redis):
    mailbox = poller(settings.with_overrides(poll_interval=120), engine, lock=PollerLock(redis, "idle-test"))
    assert_picked_up_while_idling(mailbox, imap, engine)


def assert_picked_up_while_idling(mailbox: Mailbox, imap, engine) -> None:
    """Run the poller until it IDLEs, APPEND one recap, and see it filed within seconds; then stop the poller."""
    stop = threading.Event()
    runner = threading.Thread(target=mailbox.run, args=(stop,), daemon=True)
    runner.start()
    try:
        wait_until(lambda: mailbox.client is not None and mailbox.client._idle_tag is not None, 10)
        imap.append("INBOX", recap(1))
        appended = time.monotonic()
        wait_until(lambda: len(_rows(engine)) == 1 and _rows(engine)[0].folder == PROCESSED, 10)
        print(f"picked up {time.monotonic() - appended:.2f}s after APPEND")
    finally:
        stop.set()
        runner.join(15)
    assert not runner.is_alive()


def test_only_one_poller_per_mailbox_holds_the_lock(redis):
    first, second = PollerLock(redis, "m", lease_seconds=5), PollerLock(redis, "m", lease_seconds=5)
    assert first.acquire_or_extend() and not second.acquire_or_extend()
    assert first.acquire_or_extend()  # extending its own lease
    first.release()
    assert second.acquire_or_extend()
    assert PollerLock(redis, "other-mailbox").acquire_or_extend()  # each mailbox has its own lock



@pytest.mark.slow
def test_reading_in_worker_processes_gives_the_same_verdicts(imap, engine, settings, reps):
    imap.append("INBOX", recap(1, sender="Stranger <someone@elsewhere.example>"))
    for n in range(2, 30):
        imap.append("INBOX", recap(n))
    imap.append("INBOX", recap(5))  # a duplicate, read in another process than its first copy
    mailbox = poller(settings.with_overrides(read_workers=2, fetch_batch=10), engine)
    stats = mailbox.poll_once()
    mailbox.close()
    assert (stats.processed, stats.failed) == (30, 0)
    verdicts = Counter((r.status, r.reason) for r in _rows(engine))
    assert verdicts == {("processed", None): 28, ("ignored", "unknown_sender"): 1, ("ignored", "duplicate"): 1}
    assert all(r.reading["note"] for r in _rows(engine) if r.status == "processed")


@pytest.mark.slow
def test_a_server_goodbye_while_idling_is_a_clean_new_login_not_an_error(dovecot, mailbox_user, engine, settings,
                                                                          reps, redis):
    """`doveadm kick` makes Dovecot say `* BYE` to the idling poller: it logs in again at once and reads what
    arrives next; no IMAP error is counted (before, the goodbye went unnoticed until the socket closed, and
    counted as a network error)."""
    import subprocess

    from service.metrics import IMAP_ERRORS_KEY

    mailbox = poller(settings.with_overrides(poll_interval=120), engine, lock=PollerLock(redis, "bye-test"))
    stop = threading.Event()
    runner = threading.Thread(target=mailbox.run, args=(stop,), daemon=True)
    runner.start()
    try:
        wait_until(lambda: mailbox.client is not None and mailbox.client._idle_tag is not None, 10)
        first = mailbox.client
        subprocess.run(["doveadm", "-c", str(dovecot.folder / "dovecot.conf"), "kick", mailbox_user],
                       check=True, capture_output=True)
        wait_until(lambda: mailbox.client is not None and mailbox.client is not first
                   and mailbox.client._idle_tag is not None, 30)
        appender = IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)  # the kick ended the fixture's too
        appender.login(mailbox_user, "secret")
        appender.append("INBOX", recap(1))
        appender.logout()
        wait_until(lambda: len(_rows(engine)) == 1 and _rows(engine)[0].folder == PROCESSED, 30)
        assert int(redis.get(IMAP_ERRORS_KEY) or 0) == 0
    finally:
        stop.set()
        runner.join(15)
    assert not runner.is_alive()
