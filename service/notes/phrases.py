"""The per-language phrase tables (`phrases/<lang>.toml`), loaded once and compiled at import.

A third language is a new TOML file beside en.toml and it.toml: no code changes.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import regex  # dateparser's own dependency: the same syntax as `re`, and over twice as fast on our alternations

PHRASES_DIR = Path(__file__).with_name("phrases")
_CONSTRUCTIONS = frozenset({"lost_on", "named", "contrast"})  # [reasons] entries that are constructions, not reasons
FLAGS = re.I | re.U


@dataclass(frozen=True)
class Phrases:
    """One language's compiled phrase table; `table` keeps the raw TOML for the modules that build their own."""

    language: str
    table: dict
    stopwords: frozenset[str]
    negator: re.Pattern
    not_a_negation: re.Pattern
    hypothesis: re.Pattern
    concord: re.Pattern | None
    process: re.Pattern
    process_after: re.Pattern
    clause_breaks: re.Pattern
    dismissed_after: re.Pattern
    dismissed_before: re.Pattern
    won: tuple[tuple[float, re.Pattern, bool], ...]  # (weight, pattern, bare): a bare "signed" names no vendor
    lost: tuple[tuple[float, re.Pattern], ...]
    still_open: re.Pattern
    next_steps: re.Pattern
    deferral: tuple[tuple[float, re.Pattern], ...]
    other_supplier: tuple[re.Pattern, ...]
    cause_internal: re.Pattern
    cause_external: re.Pattern
    reasons: dict[str, tuple[re.Pattern, ...]]
    signature: re.Pattern
    lost_on: re.Pattern
    named: re.Pattern  # "it's purely timing": the word after names the reason
    contrast: re.Pattern  # "not the price but the timing": (?P<no>…) denied, (?P<yes>…) asserted
    reason_words: dict[str, re.Pattern]


def compile_phrase(pattern: str, flags: int = FLAGS) -> re.Pattern:
    """Compile one table pattern (re flags are accepted: regex shares their values); fail loudly when broken."""
    if flags & re.I:
        pattern = pattern.replace("[A-Z]", "(?-i:[A-Z])")  # a capital still means a name under IGNORECASE
    try:
        compiled = regex.compile(pattern, flags | regex.V0)
    except regex.error as exc:  # a broken table must fail loudly at import, not at the first note
        raise ValueError(f"bad phrase pattern {pattern!r}: {exc}") from exc
    return compiled


def _compile_weighted(entries: list) -> tuple[tuple[float, re.Pattern], ...]:
    """Compile `[weight, pattern]` pairs."""
    return tuple((float(weight), compile_phrase(pattern)) for weight, pattern, *_ in entries)


def _compile_won(entries: list) -> tuple[tuple[float, re.Pattern, bool], ...]:
    """Compile `[weight, pattern]` or `[weight, pattern, "bare"]` entries."""
    return tuple((float(weight), compile_phrase(pattern), "bare" in tags) for weight, pattern, *tags in entries)


def _build_phrases(table: dict) -> Phrases:
    """Compile a raw TOML table into a Phrases."""
    negation = table["negation"]
    return Phrases(
        language=table["language"],
        table=table,
        stopwords=frozenset(word.lower() for word in table["stopwords"]),
        negator=compile_phrase(negation["before"]),
        not_a_negation=compile_phrase(negation["not_a_negation"]),
        hypothesis=compile_phrase(negation["hypothesis"]),
        concord=compile_phrase(negation["concord"]) if negation.get("concord") else None,
        process=compile_phrase(negation["process"]),
        process_after=compile_phrase(negation["process_after"]),
        clause_breaks=compile_phrase(negation["clause_breaks"]),
        dismissed_after=compile_phrase(negation["dismissed_after"]),
        dismissed_before=compile_phrase(negation["dismissed_before"]),
        won=_compile_won(table["outcome"]["won"]),
        lost=_compile_weighted(table["outcome"]["lost"]),
        still_open=compile_phrase(table["outcome"]["open"]),
        next_steps=compile_phrase(table["outcome"]["next_steps"]),
        deferral=_compile_weighted(table["outcome"]["deferral"]),
        other_supplier=tuple(map(compile_phrase, table["outcome"]["other_supplier"])),
        cause_internal=compile_phrase(table["cause"]["internal"]),
        cause_external=compile_phrase(table["cause"]["external"]),
        reasons={reason: tuple(map(compile_phrase, patterns)) for reason, patterns in table["reasons"].items()
                 if reason not in _CONSTRUCTIONS},
        lost_on=compile_phrase(table["reasons"]["lost_on"]),
        named=compile_phrase(table["reasons"]["named"]),
        contrast=compile_phrase(table["reasons"]["contrast"]),
        reason_words={reason: compile_phrase(rf"\b(?:{pattern})\b") for reason, pattern in table["structured"]["reasons"].items()},
        signature=compile_phrase(table["signature"], re.I | re.M),
    )


@cache
def languages() -> tuple[str, ...]:
    """The languages that have a phrase table, English first (the fallback)."""
    found = sorted(path.stem for path in PHRASES_DIR.glob("*.toml"))
    return tuple(sorted(found, key=lambda lang: lang != "en"))


@cache
def phrases_for(language: str) -> Phrases:
    """The compiled table of one language (English when the language has none)."""
    path = PHRASES_DIR / f"{language}.toml"
    if not path.exists():
        path = PHRASES_DIR / "en.toml"
    with path.open("rb") as handle:
        return _build_phrases(tomllib.load(handle))


COMMON_WORDS = PHRASES_DIR


@cache
def common_words(language: str) -> frozenset[str]:
    """The words a language's notes write in lowercase and never capitalise inside a sentence, counted on the
    train split (service/corpus/common_words.py); none for a language without a list."""
    path = COMMON_WORDS / f"common.{language}.txt"
    return frozenset(path.read_text(encoding="utf-8").split()) if path.exists() else frozenset()


def all_phrases() -> tuple[Phrases, ...]:
    """Every language's table."""
    return tuple(phrases_for(language) for language in languages())


all_phrases()  # compile at import: the first note must not pay for it
