"""A literal prefilter for phrase patterns: words a pattern cannot match without, checked before the regex runs.

Most phrase patterns match no note at all, and the regex engine pays for a scan of the whole text to find that
out. From the pattern's syntax tree we derive a small set of literal strings of which every match contains at
least one (the classic "required factors" of RE2/Hyperscan). One scan of the case-folded text finds which of
all the literals it holds; a set test then rules a pattern out. Sets are computed once, at compile time, and are
only ever a necessary condition: when in doubt (classes, optional parts) a pattern has none and the regex runs.
"""

from __future__ import annotations

import re
from re import _constants as C  # noqa: N812 - the standard library's own parser, not a private copy
from re import _parser as sre_parse

_MIN_TEXT = 160  # shorter strings (windows, clauses) are cheaper to scan than to fold
_DOCUMENTS = 32  # texts registered for reading whole: a note, its blanked copy, its forward, labelled values
_MIN_LITERAL = 2
# Words found in nearly every note: a requirement made of them rules nothing out, so another one is preferred.
_COMMON = frozenset("""a an the and or but not no non is are was were be been to of in on at for with from by as it
its this that they them their we our us you your he she his her have has had will would can do does did don't
n't so if up out all any one now then there what when which who how per che con del della dei di da il la le lo
gli un una uno ma se si ci ne ho ha hanno sono era è al alla nel nella sul più anche""".split())


def required_literals(pattern: str, flags: int) -> frozenset[str] | None:
    """Case-folded strings of which any match holds one, or None when no useful set is known."""
    try:
        tree = sre_parse.parse(pattern, flags & (re.I | re.M | re.S | re.U | re.X))
    except Exception:  # syntax only `regex` knows: no prefilter, the pattern still works
        return None
    found = _sequence(list(tree))
    if not found or any(len(item) < _MIN_LITERAL for item in found):
        return None
    return frozenset(found)


def _better(first: frozenset[str] | None, second: frozenset[str] | None) -> frozenset[str] | None:
    """The more selective of two requirements: longer shortest literal, then fewer literals."""
    if first is None:
        return second
    if second is None:
        return first
    def rank(req):
        return (min(1 if item in _COMMON else len(item) for item in req), -len(req))
    return first if rank(first) >= rank(second) else second


def _sequence(items) -> frozenset[str] | None:
    """The best requirement of a sequence: one of its literal runs or one of its required parts."""
    best: frozenset[str] | None = None
    run = ""
    for op, arg in items:
        if op is C.LITERAL:
            run += chr(arg).casefold()
            continue
        if op is C.AT:
            continue  # \b, ^, $ take no room: the literals around them are contiguous
        if run:
            best = _better(best, frozenset({run}))
            run = ""
        best = _better(best, _item(op, arg))
    if run:
        best = _better(best, frozenset({run}))
    return best


def _item(op, arg) -> frozenset[str] | None:
    """The requirement of one non-literal item."""
    if op is C.SUBPATTERN:
        return _sequence(list(arg[-1]))
    if op is C.ATOMIC_GROUP:
        return _sequence(list(arg))
    if op is C.BRANCH:
        union: set[str] = set()
        for alternative in arg[1]:
            found = _sequence(list(alternative))
            if not found:
                return None
            union |= found
        return frozenset(union)
    if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
        low, _, sub = arg
        return _sequence(list(sub)) if low >= 1 else None
    if op is C.ASSERT:
        direction, sub = arg
        return _sequence(list(sub)) if direction == 1 else None  # a lookahead's words are in the text too
    return None


class _Index:
    """Every literal any phrase requires, and which of them each text being read holds.

    A text the readers scan whole (a `Text`) is registered, so that even a short note is indexed once instead of
    being scanned by every pattern; any other long string (a window that happens to be long) is indexed in a
    single scratch slot, as before. Entries are keyed by the string object: the same object, the same literals.

    One scan per text finds them all: a trie of the literals is tried at every offset (inside a lookahead, so
    overlapping literals are all seen); the trie gives the longest literal starting there, and every shorter
    literal starting there is one of its prefixes, so the set found is exact.
    """

    def __init__(self) -> None:
        self.literals: set[str] = set()
        self.scanner: re.Pattern | None = None
        self.prefixes: dict[str, frozenset[str]] = {}
        self.text: str | None = None
        self.present: frozenset[str] = frozenset()
        self.documents: dict[int, tuple[str, frozenset[str]]] = {}  # id → (the text, kept alive; its literals)

    def add(self, literals: frozenset[str]) -> None:
        """Register a phrase's literals (at import time)."""
        if not literals <= self.literals:
            self.literals |= literals
            self.scanner = None

    def register(self, text: str) -> None:
        """Index a text that many patterns will scan whole, whatever its length (the oldest entry makes room)."""
        if id(text) not in self.documents:
            if len(self.documents) >= _DOCUMENTS:
                del self.documents[next(iter(self.documents))]
            self.documents[id(text)] = (text, self._scan(text))

    def known(self, text: str) -> frozenset[str] | None:
        """The literals of `text` if it is indexed (registered, or long), else None: scanning it is cheaper."""
        entry = self.documents.get(id(text))
        if entry is not None and entry[0] is text:
            return entry[1]
        return self.holds(text) if len(text) >= _MIN_TEXT else None

    def holds(self, text: str) -> frozenset[str]:
        """The registered literals that occur in `text` (case-folded), computed once per text object."""
        if text is not self.text:
            self.present = self._scan(text)
            self.text = text
        return self.present

    def _scan(self, text: str) -> frozenset[str]:
        """The registered literals that occur in `text` (case-folded)."""
        if self.scanner is None:
            self._build()
        found = set(self.scanner.findall(text.casefold()))
        return frozenset().union(*(self.prefixes[item] for item in found)) if found else frozenset()

    def _build(self) -> None:
        self.scanner = re.compile(f"(?=({_trie(self.literals)}))", re.S)
        self.prefixes = {item: frozenset(item[:end] for end in range(1, len(item) + 1) if item[:end] in self.literals)
                         for item in self.literals}


def _trie(words) -> str:
    """A regex that matches, at a given offset, the longest of `words` starting there."""
    root: dict = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict) -> str:
        branches = [re.escape(char) + emit(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in node else body

    return emit(root)


_INDEX = _Index()


def register(text: str) -> None:
    """Index `text` once for every pattern that will scan it whole (a note, however short)."""
    _INDEX.register(text)


class Phrase:
    """A compiled pattern behind its literal prefilter; the same methods as a compiled pattern."""

    __slots__ = ("compiled", "literals", "pattern")

    def __init__(self, compiled, literals: frozenset[str] | None) -> None:
        self.compiled = compiled
        self.literals = literals or None
        self.pattern = compiled.pattern
        if literals:
            _INDEX.add(literals)

    def possible(self, text: str) -> bool:
        """False when the text holds none of the pattern's required literals (so it cannot match)."""
        if self.literals is None:
            return True
        present = _INDEX.known(text)
        return present is None or not self.literals.isdisjoint(present)

    def search(self, text: str, *args):
        return self.compiled.search(text, *args) if self.possible(text) else None

    def finditer(self, text: str, *args):
        return self.compiled.finditer(text, *args) if self.possible(text) else iter(())

    def findall(self, text: str, *args):
        return self.compiled.findall(text, *args) if self.possible(text) else []

    def match(self, text: str, *args):
        return self.compiled.match(text, *args)

    def fullmatch(self, text: str, *args):
        return self.compiled.fullmatch(text, *args)

    def sub(self, repl, text: str, *args):
        return self.compiled.sub(repl, text, *args) if self.possible(text) else text

    def __repr__(self) -> str:
        return f"Phrase({self.pattern!r}, literals={self.literals!r})"
