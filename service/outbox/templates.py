"""Email templates: defaults from `templates/email/`, versions in the database, rendered in Jinja's sandbox.

A template file holds three sections behind marker lines (Jinja comments, so a file also renders as a whole):
`{# --- subject --- #}`, `{# --- text --- #}`, `{# --- html --- #}`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlmodel import Session, select

from service.models import EmailTemplate

logger = logging.getLogger(__name__)

DEFAULTS = Path(__file__).parents[2] / "templates" / "email"
LANGUAGES = ("en", "it")
_MARKER = re.compile(r"^\{# --- (subject|text|html) --- #\}[ \t]*\n?", re.M)
# A rendered email bigger than this is a template bug (a loop gone wild), not an email.
MAX_RENDERED_CHARS = 200_000


@dataclass(frozen=True)
class TemplateSource:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    version: int | None


class RenderError(ValueError):
    """A template that does not render: syntax, an unknown name, a sandbox refusal, or a runaway size."""


def split_sections(source: str) -> TemplateSource:
    parts = dict.fromkeys(("subject", "text", "html"), "")
    pieces = _MARKER.split(source)
    for name, body in zip(pieces[1::2], pieces[2::2], strict=True):
        parts[name] = body
    return TemplateSource(parts["subject"].strip(), parts["text"].strip("\n") + "\n", parts["html"].strip("\n"))


@lru_cache(maxsize=256)
def default_source(kind: str, variant: str, language: str) -> TemplateSource | None:
    """The shipped default for a key, falling back to the `default` variant, then to English."""
    for variant_name, lang in ((variant, language), ("default", language), (variant, "en"), ("default", "en")):
        path = DEFAULTS / kind / f"{variant_name}.{lang}.jinja"
        if path.exists():
            return split_sections(path.read_text(encoding="utf-8"))
    return None


@lru_cache(maxsize=2)
def _environment(autoescape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=autoescape, keep_trailing_newline=True)


def render_source(source: TemplateSource, context: dict) -> tuple[str, str, str]:
    """Render the three parts; RenderError names the part and what is wrong."""
    subject = _render_part("subject", source.subject, context, autoescape=False)
    text = _render_part("text", source.text, context, autoescape=False)
    html = _render_part("html", source.html, context, autoescape=True) if source.html.strip() else ""
    return " ".join(subject.split()), text, html


def _render_part(name: str, source: str, context: dict, *, autoescape: bool) -> str:
    try:
        output = _environment(autoescape).from_string(source).render(context)
    except TemplateError as error:
        line = f" line {error.lineno}" if getattr(error, "lineno", None) else ""
        raise RenderError(f"{name}{line}: {type(error).__name__}: {error}") from error
    except (ArithmeticError, TypeError, ValueError, OverflowError, MemoryError) as error:
        raise RenderError(f"{name}: {type(error).__name__}: {error}") from error
    if len(output) > MAX_RENDERED_CHARS:
        raise RenderError(f"{name}: rendered to {len(output)} characters (limit {MAX_RENDERED_CHARS})")
    return output


def versions(session: Session, kind: str, variant: str, language: str) -> list[EmailTemplate]:
    """Active versions of a key, newest first."""
    query = select(EmailTemplate).where(EmailTemplate.kind == kind, EmailTemplate.variant == variant,
                                        EmailTemplate.language == language, EmailTemplate.active == True)  # noqa: E712
    return list(session.exec(query.order_by(EmailTemplate.version.desc())))


def render_email(session: Session, kind: str, variant: str, language: str, context: dict) -> Rendered:
    """The newest version that renders; a broken one is skipped (and marked) so sending never blocks."""
    language = language if language in LANGUAGES else "en"
    for version in versions(session, kind, variant, language):
        try:
            subject, text, html = render_source(TemplateSource(version.subject, version.text, version.html), context)
        except RenderError as error:
            _mark_broken(version, error)
            continue
        return Rendered(subject, text, html, version.version)
    source = default_source(kind, variant, language)
    if source is None:
        raise RenderError(f"no template for {kind}/{variant}/{language}")
    subject, text, html = render_source(source, context)
    return Rendered(subject, text, html, None)


def _mark_broken(version: EmailTemplate, error: RenderError) -> None:
    """Tell the admin (the template list shows last_error) and fall back to the previous good version."""
    if version.last_error != str(error):
        version.last_error = str(error)[:2000]
        logger.error("template %s/%s/%s v%s does not render, using an older version: %s",
                     version.kind, version.variant, version.language, version.version, error)
