"""Every default template, in every language, plain and with HTML, composed as the sender composes it: the bytes
parse with zero defects in Python's `email` (policy default), and a blank line ends the header block."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from service.languages import LANGUAGES
from service.outbox.compose import compose
from service.outbox.templates import (
    DEFAULTS,
    Rendered,
    default_source,
    render_source,
    sample_context,
)
from tests.unit.test_compose import envelope

KEYS = sorted((path.parent.name, *path.stem.split(".")) for path in DEFAULTS.glob("*/*.jinja"))


def _contexts(kind: str, variant: str, language: str) -> list[dict]:
    """The full sample, the sparse one, and one with non-ASCII and long values (encoded words, quoted-printable)."""
    accented = sample_context(kind, variant, language)
    accented["customer"] = {"name": "Zoë Müller-Ørsted", "first_name": "Zoë", "email": "zoe@globex.example"}
    accented["personal_line"] = "Già pronta la proposta — " + "molto lunga " * 40
    return [sample_context(kind, variant, language), sample_context(kind, variant, language, sparse=True), accented]


def _defects(raw: bytes) -> list:
    """Every defect the parser records, on the message, on each part and on each header."""
    found = []
    for part in message_from_bytes(raw, policy=policy.default).walk():
        found += [(part.get_content_type(), d) for d in part.defects]
        found += [(name, d) for name, value in part.items() for d in getattr(value, "defects", ())]
    return found


def test_every_language_of_every_kind_has_a_default():
    assert {language for _kind, _variant, language in KEYS} == set(LANGUAGES)
    assert len(KEYS) >= 20


@pytest.mark.parametrize("html", [True, False], ids=["with-html", "plain"])
@pytest.mark.parametrize(("kind", "variant", "language"), KEYS, ids=["/".join(key) for key in KEYS])
def test_every_default_template_composes_to_mime_without_a_defect(kind, variant, language, html):
    for context in _contexts(kind, variant, language):
        subject, text, body_html = render_source(default_source(kind, variant, language), context)
        assert body_html.strip() or not html, "every default template has an HTML part"
        raw = compose(envelope(), Rendered(subject, text, body_html if html else "", None)).data
        for form in (raw, raw.replace(b"\r\n", b"\n")):  # as sent, and as a mailbox stores it
            assert _defects(form) == []
        head, body = raw.split(b"\r\n\r\n", 1)
        assert b"\r\nMIME-Version: 1.0\r\n" in head and b"\r\nMessage-ID: " in head
        message = message_from_bytes(raw, policy=policy.default)
        if html:
            assert body.startswith(b"--" + message.get_boundary().encode())
            assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        else:
            assert message.get_content_type() == "text/plain" and message.get_content().strip()
