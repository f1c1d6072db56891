"""Reading MIME defensively: charsets, encodings, broken structure, missing headers."""

from __future__ import annotations

from service.intake.mime import decode_bytes, read_letter, synthetic_message_id


def test_mislabeled_and_unknown_charsets_still_decode():
    assert decode_bytes("perché".encode(), "us-ascii") == "perché"
    assert decode_bytes("€ “quoted”".encode("cp1252"), "iso-8859-1") == "€ “quoted”"
    assert decode_bytes("caffè".encode("latin-1"), "x-unknown-foo") == "caffè"
    assert decode_bytes("Привет".encode("koi8-r"), "koi8-r") == "Привет"


def test_cr_only_line_endings_are_read_as_lines():
    raw = b"From: a@b.example\rSubject: Undelivered Mail\rMessage-ID: <x@y>\r\rbody line\r"
    letter = read_letter(raw)
    assert letter.subject == "Undelivered Mail" and letter.message_id == "<x@y>"
    assert "body line" in letter.text


def test_html_only_becomes_text_with_lines():
    raw = (b"From: a@b.example\nContent-Type: text/html; charset=utf-8\n\n"
           b"<div>Lost for now.<br>Budget frozen</div><p>Try again in <b>March</b></p>")
    text = read_letter(raw).text
    assert "Lost for now." in text and "Try again in March" in text
    assert text.index("Lost") < text.index("Budget") < text.index("Try")


def test_missing_message_id_gets_a_stable_synthetic_one():
    raw = b"From: a@b.example\n\nhello"
    assert read_letter(raw).message_id is None
    assert synthetic_message_id(raw) == synthetic_message_id(raw) != synthetic_message_id(raw + b"!")


def test_a_multipart_without_closing_boundary_or_with_bad_base64_still_reads():
    raw = (b"From: a@b.example\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n"
           b"--XX\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!not base64###\n"
           b"--XX\nContent-Type: text/plain\n\nsecond")
    letter = read_letter(raw)
    assert letter.defects
    assert isinstance(letter.text, str)


def test_encoded_words_in_names_and_subjects_are_decoded():
    raw = (b"From: =?utf-8?q?Niccol=C3=B2_Rossi?= <n@x.example>\nTo: =?iso-8859-1?q?J=F6rg?= <j@y.example>\n"
           b"Subject: =?utf-8?b?R3JhemllIHBlciBs4oCZaW5jb250cm8=?=\n\nx")
    letter = read_letter(raw)
    assert letter.sender.name == "Niccolò Rossi" and letter.to[0].name == "Jörg"
    assert letter.subject == "Grazie per l’incontro"


def test_decomposed_accents_are_composed_in_body_and_headers():
    # A Mac's paste can write "ń" as "n" and a combining accent: the reader's letters are the composed ones
    decomposed = "Marta Zielin\u0301ska decides with Rene\u0301"
    raw = ("From: =?utf-8?q?Zielin=CC=81ska?= <m@x.example>\nSubject: Re\u0301sume\u0301\n"
           "Content-Type: text/plain; charset=utf-8\n\n" + decomposed).encode()
    letter = read_letter(raw)
    assert letter.text == "Marta Zielińska decides with René"
    assert letter.sender.name == "Zielińska" and letter.subject == "Résumé"
    assert decode_bytes(decomposed.encode("utf-8"), "utf-8") == "Marta Zielińska decides with René"
    assert decode_bytes(b"plain ascii", None) == "plain ascii"


def test_raw_8bit_headers_are_decoded_not_replaced():
    """RFC 6532 mail writes headers in raw UTF-8 (older clients in Latin-1): "Niccolò", never "Niccol��", in the
    name a thank-you is addressed to; encoded words beside raw text still decode."""
    head = ('From: Niccolò <n@x.example>\nTo: "Jörg, M." <j@y.example>, Ann <a@b.example>\n'
            "Subject: Perché =?utf-8?q?l=E2=80=99incontro?= ok\n\nx")
    for charset in ("utf-8", "cp1252"):
        letter = read_letter(head.encode(charset))
        assert letter.sender.name == "Niccolò"
        assert [(p.name, p.email) for p in letter.to] == [("Jörg, M.", "j@y.example"), ("Ann", "a@b.example")]
        assert letter.subject == "Perché l’incontro ok"


def test_raw_8bit_headers_keep_backslashes_spaces_and_accents_beside_encoded_words():
    """Only the encoded words are decoded: a typed "\\u000a" stays text, never a line break; a folded header keeps
    its spaces; an encoded word in an unknown charset stays as written, the accents around it intact."""
    cases = {
        "René \\u000d\\u000a =?utf-8?q?Dupont?=": "René \\u000d\\u000a Dupont",
        "Offerta C:\\users =?utf-8?q?caff=C3=A8?=": "Offerta C:\\users caffè",
        "Perché\n =?utf-8?q?caff=C3=A8?=\n tail": "Perché caffè tail",
        "Offerta Perché =?x-bogus?q?caff=E8?=": "Offerta Perché =?x-bogus?q?caff=E8?=",
    }
    for written, read in cases.items():
        letter = read_letter(f"From: a@b.example\nSubject: {written}\n\nx".encode())
        assert letter.subject == read
    letter = read_letter("To: René \\u000d\\u000a =?utf-8?q?Dupont?= <r@x.example>\n\nx".encode())
    assert letter.to[0].name == "René \\u000d\\u000a Dupont" and "\n" not in letter.to[0].name
