"""Which language a message is written in: the language whose frequent words it uses most."""

from __future__ import annotations

import re

from service.notes.phrases import all_phrases

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.U)


def detect_language(text: str, default: str = "en") -> str:
    """The best-scoring language of `text`, or `default` when no frequent word is found."""
    words = [word.lower() for word in _WORD.findall(text)]
    scores = {phrases.language: sum(word in phrases.stopwords for word in words) for phrases in all_phrases()}
    best = max(scores, key=lambda language: (scores[language], language == default))
    return best if scores[best] > 0 else default
