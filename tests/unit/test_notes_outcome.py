"""Outcome: won / lost / unknown, with the traps of negation, hedges and quoted budget talk.
The phrase rules on their own (model=None): the trained model is scored on the corpora (test_notes_blind.py)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from service.notes import Commands, understand

SENT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
ROME = ZoneInfo("Europe/Rome")


def outcome(note: str, **kwargs) -> str:
    """The outcome read from `note`."""
    return understand(note, sent_at=SENT, tz=ROME, model=None, **kwargs).outcome  # the phrase rules alone


@pytest.mark.parametrize(
    ("note", "expected"),
    [
        ("Won! They signed the contract this morning.", "won"),
        ("Fantastic news that the budget was approved - order form attached.", "won"),
        ("Thanks for confirming the order for 40 licences.", "won"),
        ("Not only did you push this through in record time, but you also got the managers on board.", "won"),
        ("Welcome aboard, and thank you for signing!", "won"),
        ("Abbiamo ricevuto il vostro ordine: grazie per la fiducia!", "won"),
        ("Non solo avete scelto la nostra soluzione, ma anche deciso di estenderla. Grazie per la fiducia!", "won"),
        ("Lost. No budget this year.", "lost"),
        ("They haven't signed and won't go ahead.", "lost"),
        ("Hanno firmato con DataSoft, contratto triennale.", "lost"),
        ("Glad your in-house tool does the job and you don't see a need to replace it - no problem at all.", "lost"),
        ("Perso per ora. Deve sentire il direttore finanziario.", "lost"),
        ("Non è andata. Colpa mia.", "lost"),
        ("Sending the proposal by Thursday, we'll reconvene on May 5.", "unknown"),
        ("met them, nice folks, sending the deck now. too early to say", "unknown"),
        ("Incontro interlocutorio, nessuna decisione ancora. Ci risentiamo il 12 ottobre.", "unknown"),
    ],
)
def test_outcome(note, expected):
    assert outcome(note) == expected


def test_hedged_signature_is_not_a_sale():
    assert outcome("If the budget gets approved they will sign in March.") != "won"


def test_forwarded_answer_tells_the_story_when_the_note_says_little():
    forwarded = "Unfortunately we've had to cut our software budget, so we won't be able to go ahead."
    reading = understand("Nice people, shame.", sent_at=SENT, tz=ROME, forwarded=forwarded)
    assert (reading.outcome, reading.reasons) == ("lost", ["budget"])


def test_rep_note_and_forwarded_text_both_tell_reasons():
    """The rep's reason stands; the customer's own words add theirs (they chose another supplier: the blind corpus's
    labellers mark such a loss price and competitor alike). "We have chosen another supplier" sits at the cut of the
    second reason (0.50 with the ninth session's model, just under it with the eleventh's): this answer does not."""
    forwarded = "We went with another vendor."
    reading = understand("Lost: too expensive for them.", sent_at=SENT, tz=ROME, forwarded=forwarded)
    assert set(reading.reasons) == {"price", "competitor"}


@pytest.mark.parametrize("command", ["won", "lost", "unknown"])
def test_command_outcome_overrides_everything(command):
    reading = understand("Outcome: lost\nThey signed!", sent_at=SENT, tz=ROME, commands=Commands(outcome=command))
    assert reading.outcome == command


def test_noemail_changes_nothing_in_the_reading():
    note = "Lost on price, call in March."
    plain = understand(note, sent_at=SENT, tz=ROME)
    quiet = understand(note, sent_at=SENT, tz=ROME, commands=Commands(noemail=True))
    assert (plain.outcome, plain.reasons, plain.recontact_on) == (quiet.outcome, quiet.reasons, quiet.recontact_on)
