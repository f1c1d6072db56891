"""Pages in their reader's language, with Flask-Babel's gettext catalogs (service/translations/).

A page that knows its reader says so with `use_language`: the rep's pages take the language of the summary they
came from, the unsubscribe page the language of the customer's email. Every other page (the admin's, an error
before the link is read) takes the browser's Accept-Language. English is the source language: it needs no catalog.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, g, has_request_context, request
from flask_babel import Babel, get_locale, refresh

from service.languages import LANGUAGES

DEFAULT_LANGUAGE = "en"
CATALOGS = Path(__file__).parents[1] / "translations"

babel = Babel()


def init_app(app: Flask) -> None:
    """Flask-Babel with our catalogs and locale selector; templates get `_` and the page's `page_language`."""
    babel.init_app(app, default_locale=DEFAULT_LANGUAGE, default_translation_directories=str(CATALOGS),
                   locale_selector=_select_language)
    app.context_processor(lambda: {"page_language": page_language()})


def use_language(language: str | None) -> None:
    """The rest of this request in `language` (one we have pages in), else in the browser's language."""
    g.keepwarm_language = language if language in LANGUAGES else None
    refresh()  # Flask-Babel keeps the locale of the request once asked: ask again


def page_language() -> str:
    """The language this request's page is written in, for <html lang>."""
    return str(get_locale() or DEFAULT_LANGUAGE)


def browser_language() -> str:
    """The visitor's preferred language among ours (Accept-Language), else English."""
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE


def _select_language() -> str:
    if not has_request_context():
        return DEFAULT_LANGUAGE
    return g.get("keepwarm_language") or browser_language()
