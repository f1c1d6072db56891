"""The email templates admins edit: keys, versions (0 is the shipped default), saving, diffs, previews, tests.

Every save is a new EmailTemplate row. A version that does not pass check_source is kept (so nothing typed is
lost) but never activated: `active` is False and `last_error` says why, so the sender never picks it.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session, func, select

from service.audit import record
from service.languages import LANGUAGES
from service.models import OUTBOUND_KINDS, EmailTemplate, OutboundEmail
from service.outbox.compose import Envelope, address, compose
from service.outbox.template_context import template_context
from service.outbox.templates import (
    DEFAULTS,
    Problem,
    Rendered,
    TemplateSource,
    check_source,
    default_source,
    inspect_source,
    sample_context,
)
from service.outbox.transport import SmtpTransport
from service.settings import Settings

KIND_LABELS = {"thank_you": "Thank-you", "recontact": "Recontact", "rep_summary": "Summary to the rep",
               "debrief_reminder": "Debrief reminder", "rep_notice": "Delivery notice to the rep",
               "rep_answer": "Answer to a rep's reply"}
VARIANT_LABELS = {"lost": "lost sale", "won": "won sale", "budget": "budget", "timing": "timing",
                  "consult": "others to consult", "default": "default"}
LANGUAGE_LABELS = {"en": "English", "it": "Italian"}
logger = logging.getLogger(__name__)
SAMPLE = "sample"
_KINDS_WITH_VARIANTS = ("thank_you", "recontact")
_VARIANT_ORDER = ("lost", "won", "budget", "timing", "consult", "default")


@dataclass(frozen=True)
class TemplateKey:
    kind: str
    variant: str
    language: str

    @property
    def label(self) -> str:
        """How the pages name the key: kind and variant."""
        kind = KIND_LABELS.get(self.kind, self.kind)
        if self.variant == "default" and self.kind not in _KINDS_WITH_VARIANTS:
            return kind
        return f"{kind} · {VARIANT_LABELS.get(self.variant, self.variant)}"

    @property
    def name(self) -> str:
        """kind/variant/language, as the audit log names it."""
        return f"{self.kind}/{self.variant}/{self.language}"


@dataclass(frozen=True)
class Version:
    """One version of a key as the pages show it; number 0 is the default shipped in templates/email/."""

    number: int
    source: TemplateSource
    author: str
    created_at: datetime | None
    active: bool
    last_error: str | None


def all_keys() -> list[TemplateKey]:
    """Every key that has a shipped default, in a stable reading order."""
    keys = []
    for path in DEFAULTS.glob("*/*.jinja"):
        variant, language = path.stem.split(".")
        if path.parent.name in OUTBOUND_KINDS and language in LANGUAGES:
            keys.append(TemplateKey(path.parent.name, variant, language))
    return sorted(keys, key=_order)


def _order(key: TemplateKey) -> tuple:
    variant = _VARIANT_ORDER.index(key.variant) if key.variant in _VARIANT_ORDER else len(_VARIANT_ORDER)
    return OUTBOUND_KINDS.index(key.kind), variant, key.variant, LANGUAGES.index(key.language)


def find_key(kind: str, variant: str, language: str) -> TemplateKey | None:
    """The key, if Keepwarm ships a default for it (else None: a 404)."""
    key = TemplateKey(kind, variant, language)
    return key if key in all_keys() else None


def _rows(session: Session, key: TemplateKey):
    return select(EmailTemplate).where(EmailTemplate.kind == key.kind, EmailTemplate.variant == key.variant,
                                       EmailTemplate.language == key.language)


def _as_version(row: EmailTemplate) -> Version:
    return Version(row.version, TemplateSource(row.subject, row.text, row.html), row.author, row.created_at,
                   row.active, row.last_error)


def default_version(key: TemplateKey) -> Version:
    """Version 0: the default shipped in templates/email/."""
    return Version(0, default_source(key.kind, key.variant, key.language), "shipped default", None, True, None)


def history(session: Session, key: TemplateKey) -> list[Version]:
    """Every saved version, newest first, then version 0."""
    rows = session.exec(_rows(session, key).order_by(EmailTemplate.version.desc()))
    return [_as_version(row) for row in rows] + [default_version(key)]


def current(session: Session, key: TemplateKey) -> Version:
    """The version the sender uses now: the newest active one, else the default."""
    row = session.exec(_rows(session, key).where(EmailTemplate.active == sa.true())
                       .order_by(EmailTemplate.version.desc())).first()
    return _as_version(row) if row else default_version(key)


def version(session: Session, key: TemplateKey, number: int) -> Version | None:
    """One version of a key (0: the default), or None."""
    if number == 0:
        return default_version(key)
    row = session.exec(_rows(session, key).where(EmailTemplate.version == number)).first()
    return _as_version(row) if row else None


def overview(session: Session) -> list[tuple[TemplateKey, Version, int]]:
    """Each key with its current version and how many versions were saved."""
    columns = (EmailTemplate.kind, EmailTemplate.variant, EmailTemplate.language)
    counts = {TemplateKey(*row[:3]): row[3] for row in session.exec(select(*columns, func.count()).group_by(*columns))}
    return [(key, current(session, key), counts.get(key, 0)) for key in all_keys()]


# ---------------------------------------------------------------------------------------------------- saving


def validation_contexts(session: Session, settings: Settings, key: TemplateKey) -> list[tuple[str, dict]]:
    """The full sample (it names every placeholder), the sparse one, and the newest real email of the key."""
    contexts = [("the full sample", _sample(key)),
                ("the sample with empty optional values", sample_context(key.kind, key.variant, key.language,
                                                                         sparse=True))]
    for row in _recent_rows(session, key, limit=1):
        try:
            contexts.append((f"email #{row.id}", template_context(session, row, settings)))
        except Exception:  # a row whose rep or outcome is gone says nothing about the template
            logger.warning("email %s: no context for checking %s", row.id, key.name, exc_info=True)
    return contexts


def _sample(key: TemplateKey) -> dict:
    return sample_context(key.kind, key.variant, key.language)


def save(session: Session, settings: Settings, key: TemplateKey, source: TemplateSource, actor,
         *, action: str = "template.save", detail: dict | None = None) -> tuple[Version, list[Problem]]:
    """A new version; active only when check_source finds nothing wrong."""
    problems = check_source(source, validation_contexts(session, settings, key))
    row = EmailTemplate(kind=key.kind, variant=key.variant, language=key.language, version=_next_number(session, key),
                        subject=source.subject, text=source.text, html=source.html, author=actor.email,
                        active=not problems, last_error="\n".join(map(str, problems))[:2000] or None)
    session.add(row)
    session.flush()
    record(session, action if not problems else f"{action}.rejected", admin_id=actor.admin_id, actor=actor.email,
           target=key.name, detail={"version": row.version, **(detail or {}),
                                    **({"problems": row.last_error} if problems else {})})
    return _as_version(row), problems


def _next_number(session: Session, key: TemplateKey) -> int:
    query = select(func.max(EmailTemplate.version)).where(
        EmailTemplate.kind == key.kind, EmailTemplate.variant == key.variant, EmailTemplate.language == key.language)
    return (session.exec(query).one() or 0) + 1


def revert(session: Session, settings: Settings, key: TemplateKey, number: int, actor) -> tuple[Version, list]:
    """A new version that copies an old one (0: the default), checked like any save."""
    old = version(session, key, number)
    if old is None:
        raise LookupError(f"{key.name} has no version {number}")
    return save(session, settings, key, old.source, actor, action="template.revert", detail={"copied": number})


def diff_lines(old: Version, new: Version) -> list[tuple[str, str]]:
    """A unified diff of the three parts as (kind, line): kind is add, del, hunk or same."""
    lines = difflib.unified_diff(_lines(old.source), _lines(new.source), lineterm="", n=3)
    return [(_line_kind(line), line) for line in list(lines)[2:]]


def _lines(source: TemplateSource) -> list[str]:
    return ["{# --- subject --- #}", *source.subject.splitlines(), "{# --- text --- #}",
            *source.text.splitlines(), "{# --- html --- #}", *source.html.splitlines()]


def _line_kind(line: str) -> str:
    return {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")


# ---------------------------------------------------------------------------------------------------- previews


def _recent_rows(session: Session, key: TemplateKey, limit: int = 5) -> list[OutboundEmail]:
    """The newest real emails of this kind (this variant and language first)."""
    query = select(OutboundEmail).where(OutboundEmail.kind == key.kind)
    preferred = sa.case((sa.and_(OutboundEmail.variant == key.variant, OutboundEmail.language == key.language), 0),
                        else_=1)
    return list(session.exec(query.order_by(preferred, OutboundEmail.id.desc()).limit(limit)))


def preview_choices(session: Session, key: TemplateKey) -> list[tuple[str, str]]:
    """What a preview can be rendered with: the sample, or one of the newest real emails of the kind."""
    recent = [(str(row.id), f"Email #{row.id} to {row.to_address} ({row.language}, "
                            f"{row.due_at:%Y-%m-%d})") for row in _recent_rows(session, key)]
    return [(SAMPLE, "Sample data")] + recent


def preview_context(session: Session, settings: Settings, key: TemplateKey, choice: str | None) -> tuple[str, dict]:
    """(label, context) for a choice from preview_choices; anything unknown falls back to the sample."""
    row = session.get(OutboundEmail, int(choice)) if choice and choice.isdigit() else None
    if row is None or row.kind != key.kind:
        return "the sample", _sample(key)
    return f"email #{row.id}", template_context(session, row, settings)


def preview(source: TemplateSource, label: str, context: dict) -> tuple[Rendered | None, list[Problem]]:
    """The rendered parts, or the problems that stop them."""
    parts, problems = inspect_source(source, [(label, context)])
    if problems:
        return None, problems
    return Rendered(*parts, None), []


# ---------------------------------------------------------------------------------------------------- tests


def send_test(session: Session, settings: Settings, key: TemplateKey, source: TemplateSource, actor) -> list:
    """Render with the sample and email it to the admin over the project's SMTP transport."""
    rendered, problems = preview(source, "the sample", _sample(key))
    if problems:
        return problems
    message = compose(_test_envelope(settings, actor.email), Rendered(
        f"[Keepwarm test] {rendered.subject}", rendered.text, rendered.html, None))
    transport = SmtpTransport(settings.smtp(), timeout=20, settings=settings)
    try:
        transport.send(message, actor.email)
    finally:
        transport.close()
    record(session, "template.test_sent", admin_id=actor.admin_id, actor=actor.email, target=key.name,
           detail={"to": actor.email, "subject": rendered.subject})
    return []


def _test_envelope(settings: Settings, to_address: str) -> Envelope:
    from service.outbox.rows import mint_message_id

    return Envelope(sender=address("Keepwarm", settings.intake_address), to=address(None, to_address),
                    reply_to=None, message_id=mint_message_id(settings), date=datetime.now(UTC))
