"""Which language a message is written in: the language whose frequent words it uses most."""

from __future__ import annotations

import re
from collections import Counter

from service.notes.phrases import all_phrases

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.U)


def detect_language(text: str, default: str = "en") -> str:
    """The best-scoring language of `text`, or `default` when no frequent word is found.

    The words are counted once; each language then looks up only those of its frequent words the text has.
    """
    counts = Counter(map(str.lower, _WORD.findall(text)))
    scores = {phrases.language: sum(counts[word] for word in phrases.stopwords & counts.keys())
              for phrases in all_phrases()}
    best = max(scores, key=lambda language: (scores[language], language == default))
    return best if scores[best] > 0 else default
