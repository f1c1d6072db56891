"""The composed bytes, read back with the standard library's parser: what a receiving mail client sees."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header

import pytest

from service.outbox.compose import Envelope, address, compose, reply_subject
from service.outbox.templates import Rendered

WHEN = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


def envelope(**changes) -> Envelope:
    values = {"sender": address("Tom Baker", "followup@acme.example"), "to": address("Jane Doe", "jane@globex.example"),
              "reply_to": address("Tom Baker", "tom.baker@acme.example"), "message_id": "<kw.1@keepwarm.acme.example>",
              "date": WHEN, "unsubscribe_url": "https://kw.acme.example/unsubscribe/" + "Ab3_-" * 40,
              "unsubscribe_mailto": "mailto:followup+unsubscribe@acme.example?subject=unsubscribe"}
    return Envelope(**{**values, **changes})


def parsed(outgoing):
    """As a mailbox stores it: line ends made local (LF), then parsed."""
    return message_from_bytes(outgoing.data.replace(b"\r\n", b"\n"), policy=policy.default)


def test_text_and_html_arrive_as_an_alternative_with_every_header():
    outgoing = compose(envelope(), Rendered("Thank you, Jane", "Hello Jane,\nthank you.\n", "<p>Hello Jane</p>", None))
    message = parsed(outgoing)
    assert outgoing.sender == "followup@acme.example"
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content() == "Hello Jane,\nthank you.\n"
    assert message.get_body(("html",)).get_content().strip() == "<p>Hello Jane</p>"
    assert message["From"].addresses[0].display_name == "Tom Baker"
    assert message["Reply-To"].addresses[0].addr_spec == "tom.baker@acme.example"
    assert message["Subject"] == "Thank you, Jane" and message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"] == "<kw.1@keepwarm.acme.example>" and message["Date"].datetime == WHEN
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_every_line_ends_in_crlf_and_stays_under_the_smtp_limit():
    long_text = "word " * 400 + "\n" + "x" * 2000 + "\n"
    data = compose(envelope(references=tuple(f"<ref{n}.{'a' * 50}@mail.example>" for n in range(25)),
                            in_reply_to="<recap@mail.example>"),
                   Rendered("Re: " + "long subject " * 30, long_text, "", None)).data
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    message = message_from_bytes(data.replace(b"\r\n", b"\n"), policy=policy.default)
    assert message.get_content() == long_text
    assert len(message["References"].split()) == 20 and message["In-Reply-To"] == "<recap@mail.example>"


def test_list_unsubscribe_keeps_its_urls_raw_as_rfc_2369_asks():
    data = compose(envelope(), Rendered("Hi", "Hi\n", "", None)).data
    header = data.split(b"List-Unsubscribe:", 1)[1].split(b"\r\nList-Unsubscribe-Post")[0]
    assert b"=?" not in header  # no encoded words, which clients do not read in this header
    assert b"<https://kw.acme.example/unsubscribe/" + b"Ab3_-" * 40 + b">" in header
    assert b"<mailto:followup+unsubscribe@acme.example?subject=unsubscribe>" in header


def test_non_ascii_names_subjects_and_bodies_round_trip():
    outgoing = compose(envelope(sender=address("Niccolò Bianchi", "followup@acme.example"),
                                to=address("Zoë Müller-Łukasiewicz " * 4, "zoe@client.example")),
                       Rendered("Grazie per l'incontro — a presto", "Cara Zoë,\ngrazie di cuore. €\n",
                                "<p>Cara Zoë</p>", None))
    assert outgoing.data.isascii()
    message = parsed(outgoing)
    assert message["Subject"] == "Grazie per l'incontro — a presto"
    assert message["From"].addresses[0].display_name == "Niccolò Bianchi"
    # RFC 2047 6.2: the space between encoded words is not text (email.header honours it; the newer address
    # parser of CPython 3.11 keeps it, for its own output too), so the name is read back with email.header.
    raw_to = message_from_bytes(outgoing.data, policy=policy.compat32)["To"]
    assert str(make_header(decode_header(raw_to))) == ("Zoë Müller-Łukasiewicz " * 4).strip() + " <zoe@client.example>"
    assert message.get_body(("plain",)).get_content() == "Cara Zoë,\ngrazie di cuore. €\n"


def test_a_plain_email_has_one_text_part():
    message = parsed(compose(envelope(reply_to=None, unsubscribe_url=None, unsubscribe_mailto=None),
                             Rendered("Your summary", "From now on, nothing changes.\n.\n", "", None)))
    assert message.get_content_type() == "text/plain" and not message.is_multipart()
    assert message.get_content() == "From now on, nothing changes.\n.\n"
    assert message["Reply-To"] is None and message["List-Unsubscribe"] is None


@pytest.mark.parametrize("name", ["Tom\r\nBcc: victim@evil.example", "Tom\nX-Evil: 1", "Tom\x00\x0b\x1b"])
def test_no_name_or_subject_can_add_a_header(name):
    outgoing = compose(envelope(sender=address(name, "followup@acme.example"), to=address(name, "jane@globex.example")),
                       Rendered(f"Hello {name}", "Hi\n", "", None))
    message = parsed(outgoing)
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert all(0x20 <= c < 0x7f for line in outgoing.data.split(b"\r\n\r\n")[0].split(b"\r\n") for c in line)


@pytest.mark.parametrize("junk", ["", "jane", "jane@", "<jane@globex.example>", "jane@globex.example, eve@evil.example",
                                  'jane"@globex.example'])
def test_junk_addresses_are_refused(junk):
    with pytest.raises(ValueError):
        address("Jane", junk)


def test_an_address_that_needs_smtputf8_is_refused_not_mangled():
    with pytest.raises(ValueError):
        compose(envelope(to=address("Jörg", "jörg@client.example")), Rendered("Hi", "Hi\n", "", None))


def test_an_international_domain_is_sent_in_its_ascii_form():
    message = parsed(compose(envelope(to=address("Jörg", "jorg@bücher.example")), Rendered("Hi", "Hi\n", "", None)))
    assert message["To"].addresses[0].domain == "xn--bcher-kva.example"


def test_reply_subject_does_not_stack_prefixes():
    assert reply_subject("Our meeting") == "Re: Our meeting"
    assert reply_subject("RE: Our meeting") == "RE: Our meeting"
    assert reply_subject("R: Il nostro incontro") == "R: Il nostro incontro"
