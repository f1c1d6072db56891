"""Who the customers are: recipients and forwards first; a note written to Keepwarm alone gives the addresses the
rep typed, and those customer emails wait for the rep's confirmation."""

from datetime import UTC, datetime

from service.intake.reading import RepInfo, read_raw
from service.settings import Settings
from tests.mail import recap

SETTINGS = Settings(intake_address="followup@acme.example")
NOTE = ("ciao,\ncall fatta cn Tipografia Mancini (Luca Mancini, luca.mancini@tipografia-mancini.example)\n"
        "- nn se ne fa niente x ora\n- ricontattare a novembre\n\nD.\n")


class _Reps:
    def rep(self, address):
        return RepInfo(1, "tom.baker@acme.example", "Tom Baker", "Europe/Rome")

    def seen(self, message_id):
        return False


def _read(body: str, to: str):
    return read_raw(recap(1, body=body, to=to, date=datetime(2026, 9, 18, 10, tzinfo=UTC)), SETTINGS, _Reps())


def test_a_note_to_keepwarm_alone_takes_the_addresses_the_rep_typed_and_holds_them():
    reading = _read(NOTE, "followup@acme.example")
    assert [c["email"] for c in reading.customers] == ["luca.mancini@tipografia-mancini.example"]
    assert reading.accepted and reading.hold == "typed_customers"


def test_recipients_come_first_and_typed_addresses_are_ignored_then():
    reading = _read(NOTE, "Giulia <giulia@tipografia-mancini.example>")
    assert [c["email"] for c in reading.customers] == ["giulia@tipografia-mancini.example"]
    assert reading.hold is None


def test_our_own_addresses_typed_in_a_note_are_not_customers():
    reading = _read("lost, budget. ask anna.bianchi@acme.example or followup@acme.example\n", "followup@acme.example")
    assert reading.customers == [] and reading.ignored_reason == "no_customer"


REPLY = ("Hi Imran,\n\nNo need to apologise, and thanks for telling me straight away. Let's talk again in the "
         "new year.\n\nAll the best,\nTom\n\n> On 26 Oct 2026, at 17:48, {author} wrote:\n> \n"
         "> Tom, I'm sorry - the board has frozen all non-essential spend. We can't proceed.\n> Imran\n")
IMRAN = "Imran Hussain <i.hussain@quayside.example>"


class _Team:
    """Tom, who also writes from a private address on an outside domain."""

    def rep(self, address):
        if address in ("tom.baker@acme.example", "tom.baker@gmail.example"):
            return RepInfo(1, "tom.baker@acme.example", "Tom Baker", "Europe/Rome")
        return None

    def seen(self, message_id):
        return False


def _reply(author: str, to: str = IMRAN):
    return read_raw(recap(1, body=REPLY.format(author=author), to=to, date=datetime(2026, 10, 27, 10, tzinfo=UTC)),
                    SETTINGS, _Team())


def test_a_reply_reads_the_customers_quoted_message_as_their_answer():
    """The rep answers the customer and copies Keepwarm: who decided is said in the quoted message alone."""
    for to in (IMRAN, "followup@acme.example"):  # to the customer, or to Keepwarm alone
        reading = _reply(IMRAN, to)
        assert reading.outcome == "lost"
        assert [person["role"] for person in reading.decision_makers] == ["board"]
    assert _reply("Imran <i.hussain@QUAYSIDE.example>", "Ops <ops@quayside.example>").decision_makers  # their domain


def test_a_quoted_message_of_a_rep_a_colleague_or_a_third_party_is_not_the_customers_answer():
    for author in ("Tom Baker <tom.baker@acme.example>", "Anna <anna.bianchi@acme.example>",
                   "Tom <tom.baker@gmail.example>",  # a rep's own address on an outside domain
                   "Vendor News <news@newsletter.example>"):  # not the customer the reply goes to
        assert _reply(author).decision_makers == []
