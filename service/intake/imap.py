"""The IMAP side of intake: fetch new mail by UID, keep it, read it, then file it away.

Order of work in one pass, chosen so that a crash at any point loses nothing and doubles nothing:
1. fetch new UIDs in batches, store the raw bytes and the new last UID in one commit;
2. read every stored message still waiting (a failure is counted; the third quarantines it);
3. move every decided message out of the intake folder (MOVE, else COPY + \\Deleted + UID EXPUNGE).
A restart repeats only what was not committed; moving a UID that is already gone is a no-op.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis
import sqlalchemy as sa
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from sqlalchemy.engine import Engine
from sqlmodel import select

from service.context import Services
from service.db import UNAVAILABLE, session_scope
from service.intake.pool import Readers
from service.intake.store import inbound_values, load_batch
from service.mailauth import starttls_missing, tls_context, token_provider
from service.metrics import count_imap_error, mailbox_key, report_mailbox
from service.models import InboundMessage, MailboxState
from service.settings import ServerURL, Settings

logger = logging.getLogger(__name__)

PROCESSED = "Keepwarm/Processed"
QUARANTINE = "Keepwarm/Quarantine"
# Fetch commands stop adding messages to a batch beyond this many bytes, so a run of huge mails stays bounded.
BATCH_BYTES = 64 * 1024 * 1024
NETWORK_ERRORS = (IMAPClientError, OSError, socket.error, ssl.SSLError, EOFError)
# Redis (the poller's lock) or the database going away, e.g. for a restart: the poller waits and goes on.
SERVICE_ERRORS = (redis.exceptions.RedisError, *UNAVAILABLE)
SERVICE_WAIT_MAX = 10.0  # seconds between tries to reach Redis or the database again


@dataclass
class PassStats:
    fetched: int = 0
    processed: int = 0
    failed: int = 0
    moved: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


class Mailbox:
    """One IMAP folder that reps BCC; `poll_once` is one full pass, `run` keeps polling and idling."""

    def __init__(self, settings: Settings, engine: Engine, *, record: Callable[[dict], dict[int, str]],
                 url: ServerURL | None = None, lock=None, services: Services | None = None):
        """`record` writes a read batch and its effects, and returns each message's status (the pipeline's)."""
        self.settings = settings
        self.engine = engine
        self.record = record
        self.services = services or Services.with_engine(settings, engine)  # Redis, for metrics and health
        self.url = url or settings.imap()
        self.folder = self.url.path.strip("/") or "INBOX"
        self.key = mailbox_key(self.url)
        self.lock = lock
        self.readers = Readers(settings)
        self.client: IMAPClient | None = None
        self._delimiter = "/"

    # -- connection -------------------------------------------------------------------------------
    def connect(self) -> IMAPClient:
        """Log in, create our folders if needed and select the intake folder."""
        context = tls_context(self.settings)
        client = IMAPClient(self.url.host, port=self.url.port, ssl=self.url.secure, ssl_context=context,
                            timeout=60)
        try:
            if self.url.starttls and not client.has_capability("STARTTLS"):
                raise starttls_missing(f"the IMAP server {self.url.host}:{self.url.port}")
            if self.url.starttls:
                client.starttls(context)
            _log_in(client, self.url, self.settings)
        except BaseException:
            with contextlib.suppress(OSError):  # a failed handshake has closed the socket already
                client.shutdown()
            raise
        self._delimiter = _delimiter(client)
        for name in (PROCESSED, QUARANTINE):
            if not client.folder_exists(self._folder_name(name)):
                client.create_folder(self._folder_name(name))
        self.client = client
        return client

    def close(self) -> None:
        self.readers.close()
        client, self.client = self.client, None
        if client is not None:
            try:
                client.logout()
            except Exception:  # the connection may already be dead; closing is best effort
                client.shutdown() if hasattr(client, "shutdown") else None

    def _folder_name(self, name: str) -> str:
        return name.replace("/", self._delimiter)

    # -- one pass ---------------------------------------------------------------------------------
    def poll_once(self) -> PassStats:
        """Fetch, read and file everything that is waiting; reconnects if needed. Reports on the mailbox's
        health either way (for /readyz)."""
        try:
            stats = self._pass()
        except NETWORK_ERRORS as error:
            report_mailbox(self.services, self.key, f"{type(error).__name__}: {error}")
            raise
        report_mailbox(self.services, self.key, None)
        return stats

    def _pass(self) -> PassStats:
        client = self.client or self.connect()
        uidvalidity = int(client.select_folder(self.folder)[b"UIDVALIDITY"])
        stats = PassStats()
        stats.fetched = self._fetch_new(client, uidvalidity)
        self._read_waiting(uidvalidity, stats)
        stats.moved = self._file_decided(client, uidvalidity)
        return stats

    def _fetch_new(self, client: IMAPClient, uidvalidity: int) -> int:
        last_uid = self._last_uid(uidvalidity)
        uids = sorted(u for u in client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid)
        if not uids:
            return 0
        sizes = {uid: data.get(b"RFC822.SIZE", 0) for uid, data in client.fetch(uids, ["RFC822.SIZE"]).items()}
        fetched = 0
        for batch in _batches(uids, sizes, self.settings.fetch_batch, self.settings.max_message_bytes):
            fetched += self._fetch_batch(client, uidvalidity, batch, sizes)
        return fetched

    def _fetch_batch(self, client: IMAPClient, uidvalidity: int, batch: list[int], sizes: dict[int, int]) -> int:
        """Fetch one batch and commit its rows together with the new last UID."""
        wanted = [u for u in batch if sizes.get(u, 0) <= self.settings.max_message_bytes]
        bodies = {uid: data[b"BODY[]"] for uid, data in client.fetch(wanted, ["BODY.PEEK[]"]).items()} if wanted else {}
        with session_scope(self.engine) as session:
            session.connection().execute(InboundMessage.__table__.insert(), [
                self._row_values(uidvalidity, uid, bodies.get(uid), sizes.get(uid, 0)) for uid in batch])
            state = _state(session, self.key)
            state.uidvalidity, state.last_uid = uidvalidity, max(batch)
            state.updated_at = datetime.now(UTC)
        return len(batch)

    def _row_values(self, uidvalidity: int, uid: int, raw: bytes | None, size: int) -> dict:
        if raw is None:  # too large to fetch: keep a row that says so; the mail itself stays on the server
            return inbound_values(b"", mailbox=self.key, uidvalidity=uidvalidity, uid=uid, folder=self.folder,
                                  size=size, status="quarantined", reason=f"too_large: {size} bytes",
                                  message_id=f"<uid-{uidvalidity}-{uid}@too-large.invalid>")
        return inbound_values(raw, mailbox=self.key, uidvalidity=uidvalidity, uid=uid, folder=self.folder)

    def _last_uid(self, uidvalidity: int) -> int:
        """Where to resume; a changed UIDVALIDITY means every UID is new again (rows dedupe by Message-ID)."""
        with session_scope(self.engine) as session:
            state = _state(session, self.key)
            if state.uidvalidity != uidvalidity:
                if state.uidvalidity is not None:
                    logger.warning("mailbox %s: UIDVALIDITY %s -> %s, rescanning", self.key,
                                   state.uidvalidity, uidvalidity)
                    _forget_old_uids(session, self.key, uidvalidity)
                state.uidvalidity, state.last_uid = uidvalidity, 0
            return state.last_uid

    def _read_waiting(self, uidvalidity: int, stats: PassStats) -> None:
        """Read the waiting messages a batch per commit, reading the next batch while recording this one."""
        waiting = self._waiting_ids()
        chunks = [waiting[i:i + self.settings.fetch_batch] for i in range(0, len(waiting), self.settings.fetch_batch)]
        loaded = load_batch(self.engine, chunks[0]) if chunks else None
        futures = self.readers.submit(loaded) if loaded else []
        for index in range(len(chunks)):
            readings = self.readers.collect(futures, loaded)
            if index + 1 < len(chunks):
                loaded = load_batch(self.engine, chunks[index + 1])
                futures = self.readers.submit(loaded)
            self._count(self._record_batch(readings), stats)

    def _count(self, statuses: dict[int, str], stats: PassStats) -> None:
        for status in statuses.values():
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
            stats.processed += status != "new"
            stats.failed += status in ("new", "quarantined")

    def _record_batch(self, readings) -> dict[int, str]:
        return self.record(readings)

    def _waiting_ids(self) -> list[int]:
        with session_scope(self.engine) as session:
            query = select(InboundMessage.id).where(InboundMessage.mailbox == self.key,
                                                    InboundMessage.status == "new")
            return list(session.exec(query.order_by(InboundMessage.id)))

    def _file_decided(self, client: IMAPClient, uidvalidity: int) -> int:
        """Move decided messages out of the intake folder, then record where they went."""
        moved = 0
        for destination, statuses in ((PROCESSED, ("processed", "ignored")), (QUARANTINE, ("quarantined",))):
            uids = self._decided_uids(uidvalidity, statuses)
            if uids:
                self._move(client, uids, self._folder_name(destination))
                self._record_folder(uidvalidity, uids, destination)
                moved += len(uids)
        return moved

    def _decided_uids(self, uidvalidity: int, statuses: tuple[str, ...]) -> list[int]:
        with session_scope(self.engine) as session:
            query = select(InboundMessage.uid).where(
                InboundMessage.mailbox == self.key, InboundMessage.uidvalidity == uidvalidity,
                InboundMessage.folder == self.folder, InboundMessage.status.in_(statuses))
            return sorted(u for u in session.exec(query) if u is not None)

    def _move(self, client: IMAPClient, uids: list[int], destination: str) -> None:
        for start in range(0, len(uids), 500):
            chunk = uids[start:start + 500]
            if client.has_capability("MOVE"):
                client.move(chunk, destination)
            else:
                client.copy(chunk, destination)
                client.delete_messages(chunk)
                client.uid_expunge(chunk) if client.has_capability("UIDPLUS") else client.expunge()

    def _record_folder(self, uidvalidity: int, uids: list[int], destination: str) -> None:
        with session_scope(self.engine) as session:
            for start in range(0, len(uids), 500):
                session.execute(sa.update(InboundMessage).where(
                    InboundMessage.mailbox == self.key, InboundMessage.uidvalidity == uidvalidity,
                    InboundMessage.uid.in_(uids[start:start + 500])).values(folder=destination))

    # -- running ----------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Poll, then IDLE (or sleep) until new mail or the safety-net interval; ride out IMAP, Redis and database
        outages with backoff (reconnecting to IMAP, waiting for the others)."""
        backoff = 1.0
        self.readers.warm_up()
        while not stop.is_set():
            try:
                self._poll_and_wait(stop)
                backoff = 1.0
            except NETWORK_ERRORS as error:
                logger.warning("mailbox %s: %s; reconnecting in %.0fs", self.key, error, backoff)
                count_imap_error(self.services)
                self.close()
                backoff = _pause(stop, backoff, 60.0)
            except SERVICE_ERRORS as error:  # the IMAP session is fine: keep it, wait for the service to answer
                backoff = min(backoff, SERVICE_WAIT_MAX)
                logger.warning("mailbox %s: %s does not answer (%s); next try in %.0fs", self.key,
                               _service_name(error), (str(error).splitlines() or [""])[0], backoff)
                backoff = _pause(stop, backoff, SERVICE_WAIT_MAX)
        self.close()

    def _poll_and_wait(self, stop: threading.Event) -> None:
        """One pass if this poller holds the mailbox's lock, then wait for mail."""
        if self.lock is not None and not self.lock.acquire_or_extend():
            stop.wait(min(self.settings.poll_interval, 10))
            return
        stats = self.poll_once()
        if stats.fetched or stats.moved:
            logger.info("mailbox %s: fetched %s, read %s, failed %s, moved %s", self.key,
                        stats.fetched, stats.processed, stats.failed, stats.moved)
        self._wait_for_mail(stop)

    def _wait_for_mail(self, stop: threading.Event) -> None:
        """IDLE when offered (renewed at most every idle_timeout), never longer than the poll interval."""
        client = self.client
        deadline = time.monotonic() + self.settings.poll_interval
        if client is None or not client.has_capability("IDLE"):
            stop.wait(self.settings.poll_interval)
            return
        while not stop.is_set() and time.monotonic() < deadline:
            if self._idle_round(client, min(deadline - time.monotonic(), self.settings.idle_timeout), stop):
                return

    def _idle_round(self, client: IMAPClient, seconds: float, stop: threading.Event) -> bool:
        """One IDLE of up to `seconds`, checked in short slices so stop and the lock stay responsive. A server that
        says goodbye mid-IDLE (`* BYE`: a restart, an admin's kick, a token revoked) is left at once and the next
        pass logs in again, instead of waiting for the socket to close as if it were a network error."""
        client.idle()
        goodbye = False
        try:
            end = time.monotonic() + max(seconds, 0.1)
            while time.monotonic() < end and not stop.is_set():
                responses = client.idle_check(timeout=min(2.0, max(end - time.monotonic(), 0.1)))
                if any(r and r[0] == b"BYE" for r in responses):
                    goodbye = True
                    return True
                if any(r[1] in (b"EXISTS", b"RECENT") for r in responses if len(r) > 1):
                    return True
                if self.lock is not None and not self.lock.acquire_or_extend():
                    return True
        finally:
            if goodbye:
                logger.info("mailbox %s: the server said goodbye while idling; logging in again", self.key)
                self._drop_client()
            else:
                client.idle_done()
        return False

    def _drop_client(self) -> None:
        """Forget a connection the server has ended (the reader processes stay)."""
        client, self.client = self.client, None
        if client is not None:
            try:
                client.shutdown()
            except OSError:  # already closed by the server
                pass


def _log_in(client: IMAPClient, url: ServerURL, settings: Settings) -> None:
    """LOGIN with the URL's password, or XOAUTH2 with an access token: a refused token is renewed and tried once
    more (it may have been revoked or expired early)."""
    if settings.imap_auth != "xoauth2":
        client.login(url.username or "", url.password or "")
        return
    tokens = token_provider(settings, url.username)
    token = tokens.token()
    try:
        client.oauth2_login(url.username or "", token)
    except LoginError:
        tokens.invalidate(token)
        client.oauth2_login(url.username or "", tokens.token())


def _pause(stop: threading.Event, seconds: float, longest: float) -> float:
    """Wait (a stop ends it at once); the next wait is twice as long, up to `longest`."""
    stop.wait(seconds)
    return min(seconds * 2, longest)


def _service_name(error: BaseException) -> str:
    return "Redis" if isinstance(error, redis.exceptions.RedisError) else "the database"


def _delimiter(client: IMAPClient) -> str:
    folders = client.list_folders(directory="", pattern="INBOX")
    delimiter = folders[0][1] if folders else b"/"
    return delimiter.decode() if isinstance(delimiter, bytes) else (delimiter or "/")


def _state(session, key: str) -> MailboxState:
    state = session.exec(select(MailboxState).where(MailboxState.mailbox == key)).first()
    if state is None:
        state = MailboxState(mailbox=key)
        session.add(state)
        session.flush()
    return state


def _forget_old_uids(session, key: str, uidvalidity: int) -> None:
    """Old UIDs mean nothing any more: rows still waiting in the folder will be fetched again as new UIDs."""
    rows = session.exec(select(InboundMessage).where(
        InboundMessage.mailbox == key, InboundMessage.uidvalidity != uidvalidity,
        InboundMessage.folder != PROCESSED, InboundMessage.folder != QUARANTINE))
    for row in rows:
        row.folder = None


def _batches(uids: list[int], sizes: dict[int, int], count: int, skip_above: int):
    """Batches of at most `count` UIDs and about BATCH_BYTES of mail."""
    batch, total = [], 0
    for uid in uids:
        size = sizes.get(uid, 0) if sizes.get(uid, 0) <= skip_above else 0
        if batch and (len(batch) >= count or total + size > BATCH_BYTES):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch
