"""One owner for an email's status: a rep's cancel racing a sender that claims, sends and records the same rows.

Every row must end one of two ways: canceled and never delivered, or delivered and recorded `sent`. Never
delivered and `canceled` (the bug of a cancel written back through the ORM over a claim), never delivered twice.
Real SMTP (aiosmtpd), the test database: on PostgreSQL (the second pass of `make test`) the two really run at
once on separate connections; on SQLite the database serializes them, and the property must hold all the same.
"""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest

from service import context
from service.outbox import sender
from service.outbox.actions import cancel
from tests.integration.test_outbox import _due_rows, caught_ids, rows

RACES = 1000


@pytest.mark.slow
def test_a_reps_cancel_racing_a_claiming_sender_never_leaves_a_delivered_email_canceled(engine, settings, reps,
                                                                                        redis, smtp):
    ids = _due_rows(engine, settings, RACES)
    order = list(ids)
    random.Random(14).shuffle(order)  # the cancels land all over the sender's due order
    start = threading.Barrier(2)
    answers: list[str] = []

    def rep_cancels() -> None:
        start.wait()
        answers.extend(cancel(engine, outbound_id, reason="canceled by the rep") for outbound_id in order)

    def sender_drains() -> None:
        start.wait()
        while sender.drain(context.current(), seconds=30):
            pass

    threads = [threading.Thread(target=rep_cancels), threading.Thread(target=sender_drains)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not any(thread.is_alive() for thread in threads)

    delivered = Counter(caught_ids(smtp))
    ended = {row.message_id: row.status for row in rows(engine)}
    assert set(ended.values()) <= {"sent", "canceled"}
    assert {m for m, state in ended.items() if state == "sent"} == set(delivered)  # sent ⇔ delivered
    assert max(delivered.values(), default=1) == 1
    both = Counter(state for state in ended.values())
    # Both sides won some rows, or the race was not a race (each answer names what happened to that row).
    assert both["sent"] > 0 and both["canceled"] > 0, both
    assert sum(a.endswith("canceled") for a in answers) == both["canceled"]
