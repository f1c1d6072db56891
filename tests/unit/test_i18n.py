"""The pages' catalogs: the debrief's labels say what the pipeline's choices say, every string is translated, and
the compiled .mo files are the .po files of today (`make translations` rebuilds them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from service.languages import LANGUAGES
from service.pipeline.debrief import OUR_SIDE, OUTCOME_CHOICES, PLANS, THEIR_SIDE
from service.web.debrief.labels import OUR_SIDE_LABELS, OUTCOME_LABELS, PLAN_LABELS, THEIR_SIDE_LABELS
from service.web.i18n import CATALOGS

ROOT = Path(__file__).parents[2]
TRANSLATED = [language for language in LANGUAGES if language != "en"]


@pytest.mark.parametrize(("words", "labels"), [(OUTCOME_CHOICES, OUTCOME_LABELS), (OUR_SIDE, OUR_SIDE_LABELS),
                                                (THEIR_SIDE, THEIR_SIDE_LABELS), (PLANS, PLAN_LABELS)])
def test_the_debrief_labels_are_the_pipeline_s_choices_word_for_word(words, labels):
    assert {key: str(label) for key, label in labels.items()} == words


def _po(language: str):
    with open(CATALOGS / language / "LC_MESSAGES" / "messages.po", "rb") as file:
        return read_po(file, locale=language)


def _entries(catalog) -> dict:
    """msgid → msgstr, plural forms as tuples (the .mo and .po readers give them as lists or tuples)."""
    def flat(value):
        return value if isinstance(value, str) else tuple(value)

    return {flat(m.id): flat(m.string) for m in catalog if m.id}


def _extracted() -> set[str]:
    """What `make translations` would extract today (service/translations/babel.cfg's mapping)."""
    method_map = [("service/web/**.py", "python"), ("templates/web/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
    found = extract_from_dir(ROOT, method_map, keywords=keywords)
    return {message[2] if isinstance(message[2], str) else message[2][0] for message in found}


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_string_of_the_pages_is_translated(language):
    catalog = _po(language)
    untranslated = [m.id for m in catalog if m.id and not (all(m.string) if m.pluralizable else m.string)]
    assert untranslated == [] and not any(m.fuzzy for m in catalog if m.id)
    assert _extracted() <= {m.id[0] if m.pluralizable else m.id for m in catalog if m.id}, "run make translations"


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_compiled_catalog_is_the_po_of_today(language):
    with open(CATALOGS / language / "LC_MESSAGES" / "messages.mo", "rb") as file:
        compiled = read_mo(file)
    assert _entries(compiled) == _entries(_po(language)), "run make translations"
