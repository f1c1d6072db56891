"""The rep's own words in a plain-text body: quoted history, reply headers, signatures and forwards.

Lines are classified one by one (DESIGN.md "Known pitfalls": off-the-shelf strippers kept the right text in under
half of real replies).  Everything here is a pure function over `str`; regexes are precompiled and only ever run on
short lines, so a multi-megabyte body costs one linear pass.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parseaddr, parsedate_to_datetime


@dataclass(frozen=True)
class Person:
    """Someone named in a forwarded header."""

    name: str | None
    email: str  # lowercased


@dataclass(frozen=True)
class Forward:
    """A message the rep forwarded, with the rep's own note above it."""

    note: str  # the forwarder's own words above the forward marker (quotes/signature removed; "" if none)
    sender: Person | None  # the forwarded mail's From
    to: tuple[Person, ...]  # its To
    cc: tuple[Person, ...]  # its Cc
    date: datetime | None  # its Date, aware if a zone was given; None when unreadable
    subject: str | None
    body: str  # the forwarded message's own text, its own quoted history and signature removed


@dataclass(frozen=True)
class _Boundary:
    """Where the author's own text stops, and why."""

    kind: str  # quote | reply | original | outlook | forward | signature
    start: int  # first line that is no longer the author's
    end: int  # first line after the marker (the quoted run's end, or the header block's first line)


# Real header, delimiter and footer lines are short; longer lines are prose, and skipping them keeps regex cost flat.
_MAX_MARKER_LINE = 400
# How far a valediction may sit from the end and still start a signature block.
_MAX_SIGNATURE_LINES = 14

_SPACES = str.maketrans({"\xa0": " ", "\u202f": " ", "\u2007": " ", "\u200b": "", "\t": " "})

# --- reply headers ("On … wrote:") --------------------------------------------------------------------------
_WROTE_END = re.compile(
    r"(?:\b(?:wrote|writes|ha\s+scritto|scrisse|a\s+[ée]crit|escribi[óo]|escreveu|pisze|"
    r"napisa[łl](?:\(a\)|a)?|schrieb|schreef|skrev|kirjoitti)\s*:"
    r"|\b(?:schrieb|schreef|skrev)\s+\S.{0,160}:)$",
    re.IGNORECASE,
)
# A header opens with a word like "On"/"Il giorno"/"Am" followed closely by a date, or (Gmail in pl/sv) by the date.
_REPLY_OPENER = re.compile(
    r"^(?:on|il(?:\s+giorno)?|am|le|el|op|em|w\s+dniu|den|dne)\s[^\d]{0,40}\d", re.IGNORECASE
)
_DATE_OPENER = re.compile(r"^(?:[^\W\d_]{2,14}\.?,?\s+)?\d{1,4}(?:[\s./-]|$)")
_ADDRESS_TAIL = re.compile(r"^[<\[(]?(?:mailto:)?[\w.+'-]+@[\w.-]+[>\])]")
_HAS_DATEISH = re.compile(r"@|\d")

# --- delimiters, forwards, footers ----------------------------------------------------------------------------
_FORWARD_WORDS = (
    r"forwarded\s+message|messaggio\s+inoltrato|message\s+transf[ée]r[ée]|weitergeleitete\s+nachricht|"
    r"mensaje\s+reenviado|doorgestuurd\s+bericht|mensagem\s+encaminhada|"
    r"wiadomo[śs][ćc]\s+przekazana(?:\s+dalej)?|vidarebefordrat\s+meddelande"
)
_ORIGINAL_WORDS = (
    r"original\s+message|messaggio\s+originale|ursp?r[üu]ngliche\s+nachricht|message\s+d'origine|"
    r"mensaje\s+original|oorspronkelijk\s+bericht|origineel\s+bericht|mensagem\s+original|"
    r"oryginalna\s+wiadomo[śs][ćc]|ursprungligt\s+meddelande|originalmeddelande"
)
_FORWARD_ROW = re.compile(r"^-{2,}\s*(?:" + _FORWARD_WORDS + r")\s*-{2,}$", re.IGNORECASE)
_ORIGINAL_ROW = re.compile(r"^-{2,}\s*(?:" + _ORIGINAL_WORDS + r")\s*-{2,}$", re.IGNORECASE)
_APPLE_FORWARD = re.compile(
    r"^(?:begin\s+forwarded\s+message|inizio\s+messaggio\s+inoltrato|anfang\s+der\s+weitergeleiteten\s+nachricht|"
    r"d[ée]but\s+du\s+message\s+r[ée]exp[ée]di[ée]|inicio\s+del\s+mensaje\s+reenviado|"
    r"begin\s+doorgestuurd\s+bericht|in[íi]cio\s+da\s+mensagem\s+(?:re)?encaminhada|"
    r"pocz[ąa]tek\s+przekazywanej\s+wiadomo[śs]ci|vidarebefordrat\s+brev)\s*:$",
    re.IGNORECASE,
)
_DELIMITER_ROW = re.compile(r"^(?:_{8,}|-{8,}|={8,})$")
_SIGNATURE_DELIMITER = re.compile(r"^--$")
_ROW_STARTS = frozenset("-_=")  # rows and markers start with these; checking first keeps the per-line cost low

_DEVICE = (
    r"(?:i-?phone|ipad|android|samsung|galaxy|huawei|xiaomi|pixel|oneplus|motorola|nokia|blackberry|outlook|"
    r"yahoo|gmail|aol|proton\s?mail|mail|e-?post|poczta|mobile|mobil|cellulare|smartphone|dispositivo|device|"
    r"tablet|telefon\w*|tel[ée]fono|telefone|appareil|handy|windows|spark|airmail|bluemail|superhuman|aplikacji)"
)
_MINE = r"(?:(?:my|mio|mia|meinem|meiner|mon|ma|mi|mijn|meu|minha|mojego|mojej|min|mitt)\s+)?"
# "<verb> from <my> <device>" in our languages; "Sent from my …" alone is specific enough in English.
_FROM_DEVICE = (
    r"inviato\s+(?:da|dal|con|tramite)",
    r"gesendet\s+(?:von|mit|vom)",
    r"envoy[ée]\s+(?:de|depuis|avec|à\s+partir\s+de)",
    r"enviad[oa]\s+(?:desde|con|do|da|a\s+partir\s+d[eo])",
    r"verzonden\s+(?:vanaf|met|van|via)",
    r"wys[łl]an[eoa]\s+(?:z|ze|przy\s+u[żz]yciu)",
    r"skickat?s?\s+fr[åa]n",
)
_MOBILE_FOOTER = re.compile(
    r"^(?:sent\s+(?:from|via|with|using)\s+(?:my\s+\S|" + _DEVICE + r")"
    r"|(?:get|download|scarica|ottieni|t[ée]l[ée]charger|obtenir|obtener|obtenha|h[äa]mta|pobierz)\s+outlook\b"
    r"|von\s+meinem\s+\S+(?:\s+\S+){0,3}\s+gesendet"
    r"|(?:" + "|".join(_FROM_DEVICE) + r")\s+" + _MINE + _DEVICE + r")",
    re.IGNORECASE,
)
_DISCLAIMER = re.compile(
    r"^(?:(?:important|confidential|notice)\s*:\s*)?"
    r"(?:this\s+(?:e-?mail|message|communication)(?:\s+message)?\s*(?:,|\(|and|including|together\s+with|"
    r"is\s+confidential|contains\s+confidential|may\s+contain|is\s+intended|is\s+for\s+the\s+(?:sole|exclusive))"
    r"|the\s+contents?\s+of\s+this\s+(?:e-?mail|message)"
    r"|the\s+information\s+(?:contained\s+)?in\s+this\s+(?:e-?mail|message)"
    r"|confidential(?:ity)?\s+notice|disclaimer\s*:|please\s+consider\s+the\s+environment"
    r"|questo\s+(?:messaggio|e-?mail|documento)\s+(?:e|ed)\s+(?:i\s+suoi|gli\s+eventuali|ogni)\s+allegat"
    r"|questo\s+messaggio\s+(?:è|e'|contiene)\s+(?:riservat|confidenzial|informazioni)"
    r"|le\s+informazioni\s+contenute\s+(?:in\s+)?(?:questo|questa|nella)|avviso\s+di\s+riservatezza"
    r"|pensa\s+all'ambiente|rispetta\s+l'ambiente|informativa\s+(?:sulla\s+)?privacy"
    r"|ai\s+sensi\s+(?:del|dell'|degli)\s*(?:art|d\.?\s?lgs|regolamento|reg\.|gdpr)"
    r"|diese\s+e-?mail\s+(?:enth[äa]lt|kann|ist)\s+vertraulich|diese\s+nachricht\s+(?:enth[äa]lt|ist)\s+vertraulich"
    r"|ce\s+(?:message|courriel|mail)\s+(?:et\s+(?:ses|toutes\s+les|les)\s+pi[èe]ces|est\s+confidentiel)"
    r"|este\s+(?:mensaje|correo)(?:\s+electr[óo]nico)?\s+(?:y\s+sus\s+(?:anexos|adjuntos)|es\s+confidencial)"
    r"|deze\s+e-?mail\s+(?:en\s+eventuele\s+bijlagen|is\s+vertrouwelijk)"
    r"|esta\s+mensagem\s+(?:e\s+(?:os\s+)?seus\s+anexos|[ée]\s+confidencial))",
    re.IGNORECASE,
)

# --- signatures ---------------------------------------------------------------------------------------------
_CLOSINGS = (
    "best regards|kind regards|warm regards|warmest regards|many regards|regards|best wishes|all the best|best|"
    "cheers|thanks|thank you|thanks again|many thanks|thanks and regards|thanks & regards|thx|ta|talk soon|"
    "speak soon|yours|sincerely|yours sincerely|yours truly|br|kr|rgds|"
    "cordiali saluti|distinti saluti|saluti cordiali|saluti|un saluto|un caro saluto|un cordiale saluto|"
    "buona giornata|buona serata|grazie|grazie mille|grazie ancora|grazie e a presto|grazie e buona giornata|"
    "a presto|ciao|un abbraccio|"
    "mit freundlichen grüßen|mit freundlichen grüssen|freundliche grüße|viele grüße|beste grüße|liebe grüße|"
    "schöne grüße|herzliche grüße|mfg|lg|vg|gruß|grüße|danke|vielen dank|"
    "cordialement|bien cordialement|bien à vous|salutations|bonne journée|à bientôt|amicalement|merci|"
    "merci beaucoup|"
    "saludos|un saludo|saludos cordiales|atentamente|cordialmente|gracias|muchas gracias|un abrazo|"
    "met vriendelijke groet|met vriendelijke groeten|vriendelijke groet|groeten|groet|mvg|hartelijke groet|"
    "atenciosamente|cumprimentos|abraços|obrigado|obrigada|att|"
    "pozdrawiam|z poważaniem|dzięki|"
    "med vänliga hälsningar|vänliga hälsningar|hälsningar|mvh|tack"
)
_VALEDICTION = re.compile(
    r"^(?i:" + _CLOSINGS + r")(?:[\s,!.:;-]*|[,\s]+[A-ZÀ-Ý][\w'.-]*(?:\s+[A-ZÀ-Ý][\w'.-]*){0,2}[.!]?)$"
)
_CONTACT = re.compile(
    r"[\w.+-]+@[\w-]+\.[\w.-]+|https?://|\bwww\.|\+?\d[\d\s()./-]{6,}\d|\b[\w-]+\.(?:com|net|org|it|de|fr|es|"
    r"nl|eu|io|co\.uk|example)\b",
    re.IGNORECASE,
)
# Image placeholders and social links that HTML signatures leave behind in text.
_SIGNATURE_EXTRA = re.compile(
    r"^\[(?:image|cid|immagine|bild|logo|inline)\b[^\]]*\]$|\b(?:linkedin|twitter|facebook|instagram|xing|youtube)\b",
    re.IGNORECASE,
)
_KEY_VALUE = re.compile(r"^[^:]{1,24}:\s*(?P<value>.+)$")
# Lowercase words that still belong in a title or address line ("Head of Sales", "Via della Spiga").
_SIGNATURE_WORDS = frozenset(
    "of the and for at & di del della dei degli e per und für der die das de du des la le et y el los las "
    "van der den en da do dos das och i w z ul. via tel. mob. cell. fax manager director sales account "
    "executive commerciale responsabile direttore ufficio vendite area key".split()
)

# --- header blocks ------------------------------------------------------------------------------------------
_HEADER_LINE = re.compile(
    r"^\*{0,2}(?P<key>[^\W\d_][^:*]{0,24}?)\s?\*{0,2}\s?:\*{0,2}(?:\s+|$)(?P<value>.*)$"
)
# Keys as they read lowercased and without accents ("Envoyé" → "envoye", "Ämne" → "amne").
_FIELD_KEYS = {
    "from": "from da von de van od fran fra mittente absender remitente expediteur afsender",
    "date": "date sent data inviato datum gesendet envoye enviado fecha verzonden skickat sendt wysłano wysłane "
    "enviado_el enviada_em enviado_em envoye_le sent_on",
    "to": "to a an para aan do till til pour destinatario destinatari destinataire empfanger",
    "cc": "cc kopie copie copia kopia ccn bcc",
    "subject": "subject oggetto betreff objet sujet asunto onderwerp assunto temat amne emne",
    "other": "reply-to importance importanza priorita wichtigkeit priorite prioridad attachments allegati "
    "anlagen adjuntos anexos organization organisation rispondi_a antwort_an repondre_a responder_a "
    "pieces_jointes",
}
_FIELD_BY_KEY = {
    key.replace("_", " "): field for field, keys in _FIELD_KEYS.items() for key in keys.split()
}
_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
# Outlook's "Name [mailto:a@x]" and "<mailto:a@x>": written the RFC 5322 way ("<a@x>") before parseaddr reads them.
_MAILTO = re.compile(r"[<\[]\s*mailto:\s*([^>\]\s]*)\s*[>\]]", re.IGNORECASE)
_COMPANY_SUFFIX = re.compile(r"^(?:inc|ltd|llc|plc|gmbh|ag|sa|s\.?p\.?a|s\.?r\.?l|bv|nv|co)\.?$", re.IGNORECASE)

# --- dates in forwarded headers -----------------------------------------------------------------------------
# The languages of the forward markers above: dateparser reads their month and day names ("martedì 3 marzo 2026").
_DATE_LANGUAGES = ("en", "it", "de", "fr", "es", "nl", "pt", "pl", "sv")
# Only a calendar date counts ("yesterday" or a bare "Tuesday" is no header's date); numbers are read day-first
# (a month-first date only where the day cannot be a month), whatever language the words around them are in;
# Swedish "kl." ("3 mars 2026 kl. 10:12") is a word dateparser does not know, so it is skipped like its own "t".
_DATE_SETTINGS = {"PARSERS": ["absolute-time"], "REQUIRE_PARTS": ["day", "month", "year"], "DATE_ORDER": "DMY",
                  "PREFER_LOCALE_DATE_ORDER": False, "SKIP_TOKENS": ["t", "kl.", "kl"]}


def strip_quotes(text: str) -> str:
    """The author's own words: quoted history, reply headers, signatures and mobile footers removed."""
    lines = _split_lines(text)
    probes = [_probe(line) for line in lines]
    own = _collect_own(lines, probes)
    own = _trim_tail(own)
    return _render(own)


def find_forward(text: str) -> Forward | None:
    """The first forwarded message inside a body, or None when the body forwards nothing."""
    lines = _split_lines(text)
    probes = [_probe(line) for line in lines]
    boundary = _find_forward_boundary(probes)
    if boundary is None:
        return None
    forwarded = _unquote_forwarded(lines[boundary.end :])
    fields, body_lines = _read_header_block(forwarded)
    return Forward(
        note=strip_quotes("\n".join(lines[: boundary.start])),
        sender=next(iter(_parse_people(fields.get("from", ""))), None),
        to=_parse_people(fields.get("to", "")),
        cc=_parse_people(fields.get("cc", "")),
        date=_parse_date(fields.get("date", "")),
        subject=fields.get("subject") or None,
        body=strip_quotes("\n".join(body_lines)),
    )


def find_reply(text: str) -> Forward | None:
    """The message a reply quotes under an "On <date>, <name> wrote:" header (Gmail, Apple Mail, Thunderbird; the
    header above the ">" lines or inside them), read like a forward: its author's address as the sender, its own
    words (one level of ">" removed, its quoted history and signature dropped) as the body. None when the body
    quotes no such message. Outlook's replies ("From: … Sent: …" blocks) are found by `find_forward`."""
    lines = _split_lines(text)
    probes = [_probe(line) for line in lines]
    index = 0
    while index < len(probes):
        probe = probes[index]
        if probe.startswith(">"):
            end = _end_of_quote_run(probes, index)
            inner = _unquote_forwarded(lines[index:end])
            found = _quoted_after_header(inner)
            if found is not None:
                return found
            index = end
            continue
        if probe.endswith(":"):
            header = _reply_boundary(probes, index, 0)
            start = _next_filled(probes, index + 1) if header is not None else len(probes)
            if start < len(probes) and probes[start].startswith(">"):
                end = _end_of_quote_run(probes, start)
                found = _reply_from(" ".join(probes[header.start:header.end]), _unquote_forwarded(lines[start:end]))
                if found is not None:
                    return found
                index = end
                continue
        index += 1
    return None


def _quoted_after_header(lines: list[str]) -> Forward | None:
    """A quoted run that opens with a reply header (Apple Mail quotes the header with the message)."""
    probes = [_probe(line) for line in lines]
    first = _next_filled(probes, 0)
    for end in range(first, min(first + 3, len(probes))):
        header = _reply_boundary(probes, end, first)
        if header is not None:
            return _reply_from(" ".join(probes[header.start:header.end]), lines[header.end:])
    return None


def _reply_from(header: str, quoted: list[str]) -> Forward | None:
    """The quoted message as a Forward, its sender the address the header names (None without one, or without
    words): the one in angle brackets, else the last ("On …, imran@cust.example <rita@acme.example> wrote:" is
    Rita's)."""
    bracketed = _BRACKETED_EMAIL.search(header)
    addresses = _EMAIL.findall(header)
    address = bracketed.group(1) if bracketed else (addresses[-1] if addresses else None)
    body = strip_quotes("\n".join(quoted))
    if address is None or not body.strip():
        return None
    return Forward(note="", sender=Person(None, address.lower()), to=(), cc=(), date=None, subject=None, body=body)


_BRACKETED_EMAIL = re.compile(r"[<\[(]\s*(?:mailto:)?([\w.+'-]+@[\w-]+(?:\.[\w-]+)+)\s*[>\])]")


# --- lines ------------------------------------------------------------------------------------------------------
def _split_lines(text: str) -> list[str]:
    """Lines with \\r\\n and lone \\r normalised to \\n, trailing whitespace and byte-order marks removed."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    return [line.rstrip() for line in text.split("\n")]


def _probe(line: str) -> str:
    """The line as the classifiers see it: exotic spaces made plain, outer whitespace gone."""
    stripped = line.strip()
    return stripped if stripped.isascii() else stripped.translate(_SPACES).strip()


def _render(lines: list[str]) -> str:
    """Join kept lines, without the blank lines around them or the indentation they all share."""
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    kept = lines[start:end]
    indents = [len(line) - len(line.lstrip(" ")) for line in kept if line.strip()]
    margin = min(indents, default=0)
    return "\n".join(line[margin:] for line in kept)


# --- boundaries -----------------------------------------------------------------------------------------------
def _collect_own(lines: list[str], probes: list[str]) -> list[str]:
    """The author's lines: quote runs dropped, everything from the first hard boundary on cut."""
    own: list[str] = []
    position = 0
    while position < len(lines):
        boundary = _next_boundary(probes, position)
        stop = len(lines) if boundary is None else boundary.start
        _append_segment(own, lines[position:stop])
        position = _resume_after(probes, boundary)
    return own


def _append_segment(own: list[str], segment: list[str]) -> None:
    """Add a kept segment; where a quote was cut between two segments, leave at most one blank line."""
    if not own:
        own.extend(segment)
        return
    gap = not own[-1].strip() or (bool(segment) and not segment[0].strip())
    while own and not own[-1].strip():
        own.pop()
    while segment and not segment[0].strip():
        segment = segment[1:]
    if segment:
        own.extend(([""] if gap else []) + segment)


def _resume_after(probes: list[str], boundary: _Boundary | None) -> int:
    """Where the author's text may continue after a boundary (interleaved replies); len(probes) when it cannot."""
    if boundary is None:
        return len(probes)
    if boundary.kind == "quote":
        return boundary.end
    if boundary.kind == "reply":
        following = _next_filled(probes, boundary.end)
        if following < len(probes) and probes[following].startswith(">"):
            return _end_of_quote_run(probes, following)
    return len(probes)


def _next_boundary(probes: list[str], start: int) -> _Boundary | None:
    """The first boundary at or after `start`."""
    for index in range(start, len(probes)):
        boundary = _boundary_at(probes, index, start)
        if boundary is not None:
            return boundary
    return None


def _boundary_at(probes: list[str], index: int, floor: int) -> _Boundary | None:
    """What line `index` starts, if it ends the author's own text."""
    probe = probes[index]
    if not probe:
        return None
    if probe.startswith(">"):
        return _Boundary("quote", index, _end_of_quote_run(probes, index))
    if len(probe) > _MAX_MARKER_LINE:
        return None
    if probe[0] in _ROW_STARTS:
        return _row_boundary(probes, index)
    if _MOBILE_FOOTER.match(probe) or _DISCLAIMER.match(probe):
        return _Boundary("signature", index, index + 1)
    if _APPLE_FORWARD.match(probe):
        return _Boundary("forward", index, index + 1)
    if _is_header_block(probes, index):
        return _Boundary("outlook", index, index)
    return _reply_boundary(probes, index, floor)


def _row_boundary(probes: list[str], index: int) -> _Boundary | None:
    """A line of dashes or underscores: "-- ", a forward marker, "Original Message", or a row above a header block."""
    probe = probes[index]
    if _SIGNATURE_DELIMITER.match(probe):
        return _Boundary("signature", index, index + 1)
    if _FORWARD_ROW.match(probe):
        return _Boundary("forward", index, index + 1)
    is_original = bool(_ORIGINAL_ROW.match(probe))
    if is_original or _DELIMITER_ROW.match(probe):
        block = _next_filled(probes, index + 1, limit=2)
        if block < len(probes) and _is_header_block(probes, block):
            return _Boundary("outlook", index, block)
        return _Boundary("original", index, index + 1) if is_original else None
    return None


def _is_header_block(probes: list[str], index: int) -> bool:
    """Whether a From: line starts a block that also names at least two of date, recipients and subject."""
    if _header_field(probes[index]) != "from":
        return False
    seen: set[str] = set()
    for probe in probes[index + 1 : index + 12]:
        field = _header_field(probe) if probe else "from"
        if field == "from":
            break  # a blank line or the next From: ends the block; it also keeps the scan linear on junk input
        seen.add(field or "continuation")
    return len(seen & {"date", "to", "cc", "subject"}) >= 2 and bool(seen & {"date", "subject"})


def _reply_boundary(probes: list[str], index: int, floor: int) -> _Boundary | None:
    """An "On <date>, <name> wrote:" header (in any of our languages) that ends on line `index`."""
    if not probes[index].endswith(":"):
        return None
    joined = _joined_header(probes, index, floor)
    # Every real header names a date or an address; testing that first is cheap and rejects "As she wrote:".
    if not _HAS_DATEISH.search(joined) or not _WROTE_END.search(joined):
        return None
    start = _reply_header_start(probes, index, floor)
    return None if start is None else _Boundary("reply", start, index + 1)


def _joined_header(probes: list[str], end: int, floor: int) -> str:
    """Line `end` joined to up to two short lines above it: the verb may sit before a wrapped address."""
    start, lowest = end, max(floor, end - 2)
    while start > lowest and 0 < len(probes[start - 1]) <= _MAX_MARKER_LINE and probes[start - 1][0] != ">":
        start -= 1
    return " ".join(probes[start : end + 1])


def _reply_header_start(probes: list[str], end: int, floor: int) -> int | None:
    """The first line of a reply header ending at `end`, which mail clients wrap over up to three lines."""
    for start in range(end, max(floor, end - 2) - 1, -1):
        probe = probes[start]
        if not probe or (start < end and (probe.startswith(">") or probe[-1] in ".!?")):
            break  # a blank, quoted or finished sentence above the header is the author's, not the header's
        if _REPLY_OPENER.match(probe) or _DATE_OPENER.match(probe):
            return start if sum(map(len, probes[start : end + 1])) <= _MAX_MARKER_LINE else None
    # No opener: "Maria Rossi <maria@x.example> wrote:", possibly with the address wrapped onto its own line.
    if not _HAS_DATEISH.search(probes[end]):
        return None
    if end > floor and probes[end - 1] and _ADDRESS_TAIL.match(probes[end]):
        return end - 1
    return end


def _end_of_quote_run(probes: list[str], index: int) -> int:
    """The first line after a run of ">" lines (blank lines inside the run belong to it)."""
    end = index
    while end < len(probes) and (probes[end].startswith(">") or not probes[end]):
        end += 1
    while end > index and not probes[end - 1]:
        end -= 1
    return end


def _next_filled(probes: list[str], index: int, limit: int | None = None) -> int:
    """The next non-blank line at or after `index`, skipping at most `limit` blank lines."""
    skipped = 0
    while index < len(probes) and not probes[index]:
        skipped += 1
        if limit is not None and skipped > limit:
            return len(probes)
        index += 1
    return index


# --- signatures -----------------------------------------------------------------------------------------------
def _trim_tail(lines: list[str]) -> list[str]:
    """Remove closing blocks ("Best regards,\\nAnna\\nSales Manager") and bare contact blocks from the end."""
    lines = _without_trailing_blanks(lines)
    for _ in range(3):  # a valediction above a contact block above another closing: a few rounds suffice
        cut = _valediction_cut(lines)
        if cut is None:
            cut = _contact_block_cut(lines)
        if cut is None:
            break
        lines = _without_trailing_blanks(lines[:cut])
    return lines


def _without_trailing_blanks(lines: list[str]) -> list[str]:
    """The lines without blank lines at the end."""
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    return lines[:end]


def _valediction_cut(lines: list[str]) -> int | None:
    """The index of a last valediction followed only by signature-like lines, when content sits above it."""
    first = max(0, len(lines) - _MAX_SIGNATURE_LINES)
    for index in range(len(lines) - 1, first - 1, -1):
        probe = _probe(lines[index])
        if _VALEDICTION.match(probe):
            after = [_probe(line) for line in lines[index + 1 :]]
            if _has_content(lines[:index]) and all(map(_looks_like_signature_line, after)):
                return index
            return None
    return None


def _contact_block_cut(lines: list[str]) -> int | None:
    """The start of a last paragraph that is a name plus contact details (no valediction), when content precedes."""
    start = len(lines)
    while start > max(0, len(lines) - 7) and lines[start - 1].strip():
        start -= 1
    block = [_probe(line) for line in lines[start:]]
    if not 2 <= len(block) <= 6 or (start and lines[start - 1].strip()) or not _has_content(lines[:start]):
        return None
    if _CONTACT.search(block[0]) or not any(_CONTACT.search(probe) for probe in block):
        return None
    return start if all(map(_looks_like_signature_line, block)) else None


def _has_content(lines: list[str]) -> bool:
    """Whether any line carries text."""
    return any(line.strip() for line in lines)


def _looks_like_signature_line(probe: str) -> bool:
    """Whether a line reads like part of a signature: a name, title, company, phone, address or URL."""
    if not probe:
        return True
    if len(probe) > 80:
        return False
    if _CONTACT.search(probe) or _SIGNATURE_EXTRA.search(probe):
        return True
    words = [word for word in probe.split() if any(char.isalnum() for char in word)]
    if probe[-1] in "?!:" or len(words) > 8:
        return False
    key_value = _KEY_VALUE.match(probe)
    if key_value and not re.search(r"\d", key_value["value"]):
        return False  # "Outcome: lost" is the rep talking, "Tel: 02 1234" is a signature
    return all(word[0].isupper() or word.lower() in _SIGNATURE_WORDS for word in words if word[0].isalpha())


# --- forwards -------------------------------------------------------------------------------------------------
def _find_forward_boundary(probes: list[str]) -> _Boundary | None:
    """The first forward marker that comes before any reply header (signatures and quoted lines are passed over)."""
    position = 0
    while position < len(probes):
        boundary = _next_boundary(probes, position)
        if boundary is None or boundary.kind in ("reply", "original"):
            return None
        if boundary.kind in ("forward", "outlook"):
            return boundary
        position = boundary.end
    return None


def _unquote_forwarded(lines: list[str]) -> list[str]:
    """The forwarded part with one level of ">" removed when the client quoted it (Apple Mail on iOS does)."""
    first = _next_filled([_probe(line) for line in lines[:4]], 0)
    if first >= min(len(lines), 4) or not _probe(lines[first]).startswith(">"):
        return lines
    unquoted = []
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith(">"):
            unquoted.append(stripped[2:] if stripped.startswith("> ") else stripped[1:])
        elif stripped:
            return unquoted + lines[index:]
        else:
            unquoted.append("")
    return unquoted


def _read_header_block(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """The forwarded message's header fields (first occurrence wins) and the lines of its body."""
    fields: dict[str, str] = {}
    last_field = None
    for index, line in enumerate(lines[:40]):
        probe = _probe(line)
        if not probe:
            if fields or index > 3:
                return fields, lines[index:]
            continue
        field = _header_field(probe)
        if field is not None:
            fields.setdefault(field, _header_value(probe))
            last_field = field
        elif last_field in ("from", "to", "cc") and _EMAIL.search(probe):
            fields[last_field] = f"{fields[last_field]} {probe}"  # a recipient list wrapped onto the next line
        else:
            return fields, lines[index:]
    return fields, lines[40:]


@functools.lru_cache(maxsize=64)  # a block scan reads each line twice: as a block's start and as its follower
def _header_field(probe: str) -> str | None:
    """Which field a header line carries ("from", "date", "to", "cc", "subject", "other"), if any."""
    match = _HEADER_LINE.match(probe)
    return None if match is None else _field_for_key(match["key"])


@functools.lru_cache(maxsize=512)
def _field_for_key(key: str) -> str | None:
    """The field a header key names, in any of our languages ("Envoyé" → "date")."""
    return _FIELD_BY_KEY.get(" ".join(_fold(key).split()))


def _header_value(probe: str) -> str:
    """The value of a header line, without markdown-style bold markers."""
    match = _HEADER_LINE.match(probe)
    return match["value"].strip(" *") if match else ""


def _fold(text: str) -> str:
    """Lowercase text without accents, so that "Envoyé" and "Ämne" match plain keys."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))



# --- people ---------------------------------------------------------------------------------------------------
def _parse_people(value: str) -> tuple[Person, ...]:
    """People in an address header: "Name <a@x>", "a@x", "Last, First <a@x>", "Name [mailto:a@x]", lists."""
    people = []
    pending: list[str] = []
    for chunk in _split_addresses(value):
        name, address = _read_address(chunk)
        if address is None:
            pending.append(chunk)  # "Rossi, Maria <…>" was split at its comma: the name goes on in the next chunk
            continue
        people.append(Person(name=_clean_name(", ".join([*pending, name]), address), email=address))
        pending = []
    return tuple(people)


def _split_addresses(value: str) -> list[str]:
    """Split an address list at commas and semicolons outside quotes and brackets."""
    chunks, current, depth, quoted = [], [], 0, False
    for char in value:
        if char == '"':
            quoted = not quoted
        elif char in "<[(" and not quoted:
            depth += 1
        elif char in ">])" and not quoted:
            depth = max(0, depth - 1)
        if char in ",;" and depth == 0 and not quoted:
            chunks.append("".join(current))
            current = []
        else:
            current.append(char)
    chunks.append("".join(current))
    return [chunk.strip() for chunk in chunks if chunk.strip()]


def _read_address(chunk: str) -> tuple[str, str | None]:
    """The display name and the lowercased address of one list entry; the address is None when there is none."""
    found = _EMAIL.findall(chunk)
    if not found:
        return chunk, None
    name, address = parseaddr(_MAILTO.sub(r"<\1>", chunk))
    if found == [address]:
        return name, address.lower()
    # No reading parseaddr surely gets right: two addresses ("a@x <b@x>": the strict parseaddr of Python 3.13 and of
    # recent security releases refuses it, older ones read two people), or a name without brackets ("Globex, Inc.
    # a@x", read as the address "Inc.a@x"). The first address as written, then.
    first = _EMAIL.search(chunk)
    return chunk[: first.start()] + chunk[first.end() :], first.group().lower()


def _clean_name(name: str, address: str) -> str | None:
    """A display name without quotes and brackets, "Last, First" turned round; None when it is empty or the address."""
    name = re.sub(r"mailto:|[<>\[\]()\"]", " ", name, flags=re.IGNORECASE)
    name = " ".join(name.split()).strip(" ,;'")
    if not name or name.lower() == address:
        return None
    return _turn_surname_first(name)


def _turn_surname_first(name: str) -> str:
    """ "Rossi, Maria" → "Maria Rossi"; company names like "Globex, Inc." stay as they are."""
    parts = [part.strip() for part in name.split(",")]
    if len(parts) != 2 or not all(parts) or _COMPANY_SUFFIX.match(parts[1]):
        return name
    if any(len(part.split()) > 3 or any(char.isdigit() for char in part) for part in parts):
        return name
    return f"{parts[1]} {parts[0]}"


# --- dates ----------------------------------------------------------------------------------------------------
def _parse_date(value: str) -> datetime | None:
    """A forwarded header's date in any of our languages; aware when a zone is given, None when unreadable."""
    text = value.translate(_SPACES).strip()
    if not text or len(text) > 200:
        return None
    return _rfc_date(text) or _localised_date(text)


def _rfc_date(text: str) -> datetime | None:
    """An RFC 5322 date with its zone ("Tue, 3 Mar 2026 10:12:00 +0100"), as Apple Mail and Thunderbird write it."""
    try:
        parsed = parsedate_to_datetime(text)
    except ValueError:
        return None
    # Without a zone the RFC parser has read something that is not RFC 5322: it takes "1:05 PM" for 01:05 and
    # drops "GMT+1", so such dates go to dateparser.
    return parsed if parsed.tzinfo is not None else None


@functools.lru_cache(maxsize=1024)  # dateparser takes milliseconds a date: a body read again costs nothing more
def _localised_date(text: str) -> datetime | None:
    """A date as mail clients write it in our languages ("martedì 3 marzo 2026 10:12", "3 March 2026 at 10:12 CET")."""
    parsed = _date_reader().get_date_data(text).date_obj
    if parsed is None or parsed.tzinfo is None:
        return parsed
    return parsed.replace(tzinfo=timezone(parsed.utcoffset()))  # a fixed offset, as the RFC parser gives


@functools.cache
def _date_reader():
    """One dateparser reader for our languages, built on first use: most bodies forward nothing."""
    from dateparser.date import DateDataParser

    return DateDataParser(languages=list(_DATE_LANGUAGES), settings=_DATE_SETTINGS, try_previous_locales=False)
