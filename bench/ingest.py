"""Ingest throughput against a private Dovecot: raw fetch, minimal fetch+parse, and Keepwarm end to end.

Usage: .venv/bin/python bench/ingest.py [N]   (default N=2000). Prints figures; asserts nothing.
"""

from __future__ import annotations

import email
import email.policy
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

from imapclient import IMAPClient

sys.path.insert(0, str(Path(__file__).parents[1]))

from service.db import make_engine, upgrade  # noqa: E402
from service.pipeline.polling import poller  # noqa: E402
from service.run.devstack import DovecotServer  # noqa: E402
from service.settings import load_settings  # noqa: E402
from service.team.reps import save_rep  # noqa: E402
from tests.mail import recap  # noqa: E402

BODIES = [
    "Hi {c},\n\nthanks for today. I understand the budget isn't there until Q3; happy to pick this up then.\n\nTom",
    "Lost for now. They must run it past their CFO, Maria Rossi. Try again in 3 months.\n\nTom\n-- \nTom Baker\n"
    "Acme | +44 20 1234 5678",
    "Dear {c},\n\nthank you for the call. We'll go ahead with the pilot: I'll send the contract tomorrow.\n\n"
    "Best regards,\nTom Baker\n\nOn Tue, 3 Mar 2026 at 10:12, {c} <{e}> wrote:\n> Could you send the numbers?\n"
    "> Our budget is tight until April.\n",
    "Ciao {c},\n\ngrazie per l'incontro. Capisco che per ora non ci sia budget; ci risentiamo a settembre.\n\n"
    "Un saluto,\nTom",
]


def _messages(n: int) -> list[bytes]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        customer = f"customer{i}@client{i % 50}.example"
        body = rng.choice(BODIES).format(c=f"Customer {i}", e=customer)
        out.append(recap(i, to=f"Customer {i} <{customer}>", body=body))
    return out


def _fill(client: IMAPClient, folder: str, messages: list[bytes]) -> None:
    if not client.folder_exists(folder):
        client.create_folder(folder)
    for start in range(0, len(messages), 200):
        client.multiappend(folder, messages[start:start + 200])


def _fetch_all(client: IMAPClient, folder: str, parse: bool) -> int:
    client.select_folder(folder, readonly=True)
    uids = client.search("ALL")
    count = 0
    for start in range(0, len(uids), 200):
        for data in client.fetch(uids[start:start + 200], ["BODY.PEEK[]"]).values():
            if parse:
                message = email.message_from_bytes(data[b"BODY[]"], policy=email.policy.default)
                body = message.get_body(("plain", "html"))
                body.get_content() if body else None
            count += 1
    return count


def _rate(label: str, count: int, seconds: float) -> float:
    rate = count / seconds
    print(f"{label:<48} {count:>6} msgs in {seconds:6.2f}s = {rate:8.1f} msgs/s")
    return rate


def main(n: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="kw-bench-"))
    messages = _messages(n)
    print(f"N={n}, mean size {sum(map(len, messages)) // n} bytes")
    with DovecotServer(folder / "imap", users={"followup@acme.example": "bench"}) as dovecot:
        client = IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)
        client.login("followup@acme.example", "bench")
        _fill(client, "Raw", messages)
        _fill(client, "INBOX", messages)
        started = time.perf_counter()
        raw_rate = _rate("raw imapclient batch fetch (200/command)", _fetch_all(client, "Raw", False),
                         time.perf_counter() - started)
        started = time.perf_counter()
        parse_rate = _rate("minimal fetch + email parse", _fetch_all(client, "Raw", True),
                           time.perf_counter() - started)
        for workers in (1, 2):
            folder_name = f"Run{workers}"
            _fill(client, folder_name, messages)
            e2e_rate, stats = _end_to_end(folder, dovecot, folder_name, workers)
            print(f"  statuses: {stats.statuses}")
            print(f"  ratio end-to-end / minimal fetch+parse = {e2e_rate / parse_rate:.2f} (target >= 0.5); "
                  f"/ raw fetch = {e2e_rate / raw_rate:.2f}")
        client.logout()


def _end_to_end(folder: Path, dovecot: DovecotServer, intake_folder: str, workers: int):
    """Keepwarm's own pass over a fresh database; readers warmed up first, as in a running poller."""
    settings = load_settings({"database_url": f"sqlite:///{folder}/bench-{workers}.db", "instance_dir": folder,
                              "intake_address": "followup@acme.example", "imap_url": dovecot.url(folder=intake_folder),
                              "secret_key": "bench-secret-0123456789abcdef", "read_workers": workers}, environ={}, env_file=None)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    save_rep(engine, "tom.baker@acme.example", name="Tom Baker", timezone="Europe/London")
    mailbox = poller(settings, engine)
    mailbox.readers.warm_up()
    started = time.perf_counter()
    stats = mailbox.poll_once()
    rate = _rate(f"Keepwarm end to end, {workers} reader process(es)", stats.fetched, time.perf_counter() - started)
    mailbox.close()
    return rate, stats


if __name__ == "__main__":
    logging.disable(logging.WARNING)  # no Redis here: the planned emails' enqueue warnings are expected
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
