"""The common words of each language, counted on the train split: a capitalised word that the notes write in
lowercase and never capitalise inside a sentence is a sentence's first word, not a name ("Understood Bob",
"Decidono Giordano", "Once Greg Olander"). Rebuilt by `keepwarm train-notes` beside the model; read by the
people's rules (service/notes/people.py)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from service.notes.phrases import COMMON_WORDS, common_words

# A word seen this many times in lowercase, and never capitalised after a lowercase word, is a common word.
MOST_LOWERCASE = 3
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_ADDRESS = re.compile(r"\S*(?:@|://|www\.)\S*|\S+\.(?:com|it|org|net|example|uk|eu)\b\S*", re.I)


def count_words(texts_by_language: dict[str, list[str]], names: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """Per language, the common words (lowercase, sorted) of its texts; never one of the given `names` (lowercase:
    the first names the labels write, "grant", "will", "vera")."""
    common = {}
    for language, texts in texts_by_language.items():
        lower, inside = Counter(), Counter()
        for text in texts:
            text = _ADDRESS.sub(" ", text)  # "m.keller@example.com" writes no word "keller"
            previous, previous_end = "", 0
            for match in _WORD.finditer(text):
                word = match.group()
                if word.islower():
                    lower[word] += 1
                elif word[0].isupper() and word[1:].islower() and previous.islower() \
                        and text[previous_end:match.start()] == " ":
                    inside[word.lower()] += 1  # "to Frank about it": a name that is also a word
                previous, previous_end = word, match.end()
        common[language] = sorted(word for word, count in lower.items()
                                  if count >= MOST_LOWERCASE and not inside[word] and len(word) > 1
                                  and word not in names)
    return common


def write_common_words(texts_by_language: dict[str, list[str]], names: frozenset[str] = frozenset(),
                       folder: Path = COMMON_WORDS) -> dict[str, int]:
    """Count the common words and write one file per language; how many each holds. The people's rules read
    the new lists from then on."""
    sizes = {}
    for language, words in count_words(texts_by_language, names).items():
        (folder / f"common.{language}.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
        sizes[language] = len(words)
    common_words.cache_clear()
    return sizes


def texts_by_language(cases) -> dict[str, list[str]]:
    """The labelled cases' notes and forwarded answers, by their labelled language."""
    texts: dict[str, list[str]] = {}
    for case in cases:
        texts.setdefault(case.labels.get("language"), []).append(f"{case.given.note}\n{case.given.forwarded or ''}")
    return {language: found for language, found in texts.items() if language}


def first_names(cases) -> frozenset[str]:
    """The first word of every full name the labels give a decision maker (lowercase): a name, however common
    the word ("Grant Holloway", "Vera Rossi")."""
    return frozenset(person["name"].split()[0].lower() for case in cases
                     for person in case.labels.get("decision_makers") or []
                     if person.get("name") and len(person["name"].split()) > 1)
