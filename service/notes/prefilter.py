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
_MAX_REQUIREMENTS = 3  # requirements tested per pattern: the most selective ones
_MAX_VARIANTS = 16  # a run of fixed items may stand for up to this many strings ("altr[oa]", "(?:first|second)")
# Every character `\s` matches (in `re` or in `regex`) is a blank: the index sees them all as " ".
_BLANKS = str.maketrans(dict.fromkeys("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
                                      "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000", " "))
_BLANK_RUN = re.compile(" {2,}")
_DOCUMENTS = 32  # texts registered for reading whole: a note, its blanked copy, its forward, labelled values
_MIN_LITERAL = 2
# Words found in nearly every note: a requirement made of them rules nothing out, so another one is preferred.
_COMMON = frozenset("""a an the and or but not no non is are was were be been to of in on at for with from by as it
its this that they them their we our us you your he she his her have has had will would can do does did don't
n't so if up out all any one now then there what when which who how per che con del della dei di da il la le lo
gli un una uno ma se si ci ne ho ha hanno sono era è al alla nel nella sul più anche""".split())


def required_literals(pattern: str, flags: int) -> frozenset[str] | None:
    """Case-folded words of which any match holds one (literal runs only, no variants), or None when no useful
    set is known: the coarse form of `requirements`."""
    found = _Requirements(1).of(pattern, flags)
    return found[0] if found else None


def requirements(pattern: str, flags: int) -> tuple[frozenset[str], ...]:
    """The most selective requirements of the pattern, best first: each a set of folded strings (see `fold`) of
    which any match holds one. A text must meet them all; none at all means the regex always runs."""
    return _Requirements(_MAX_VARIANTS).of(pattern, flags)[:_MAX_REQUIREMENTS]


def fold(text: str) -> str:
    """What literals are compared in: case-folded, every run of blanks one plain space (so that "\\s+" in a
    pattern is the literal " ", whatever blanks the text has there)."""
    return _BLANK_RUN.sub(" ", text.translate(_BLANKS).casefold())


def _rank(req: frozenset[str]) -> tuple[int, int]:
    """How selective a requirement is: longer shortest literal (common words count as one letter), then fewer."""
    return (min(1 if item.strip() in _COMMON else len(item) for item in req), -len(req))


def _join(heads, tails) -> set[str]:
    """Every head followed by every tail, blanks collapsed as `fold` does."""
    return {_BLANK_RUN.sub(" ", head + tail) for head in heads for tail in tails}


def _useful(req: frozenset[str]) -> bool:
    """A requirement rules something out only when each of its strings is long enough."""
    return bool(req) and all(len(item) >= _MIN_LITERAL for item in req)


class _Requirements:
    """Requirements read off the standard library's syntax tree of a pattern.

    A run joins the items that can match only a few known strings ("no", "\\s+", "[oa]", "(?:more\\s+)?"):
    the strings the run can be make one requirement ({"no budget", "no more budget"}), as long as they are at
    most `variants`. Other required parts (groups, repeats of at least one, lookaheads) add their own.
    """

    def __init__(self, variants: int) -> None:
        self.variants = variants

    def of(self, pattern: str, flags: int) -> tuple[frozenset[str], ...]:
        """Every useful requirement of the pattern, most selective first."""
        try:
            tree = sre_parse.parse(pattern, flags & (re.I | re.M | re.S | re.U | re.X))
        except Exception:  # syntax only `regex` knows: no prefilter, the pattern still works
            return ()
        useful = {req for req in self._sequence(list(tree)) if _useful(req)}
        return tuple(sorted(useful, key=lambda req: (_rank(req), sorted(req)), reverse=True))

    def _sequence(self, items) -> list[frozenset[str]]:
        """Every requirement of a sequence: its runs, and the requirements of its other required parts."""
        found: list[frozenset[str]] = []
        runs = {""}
        for op, arg in items:
            strings = self._strings(op, arg)
            if strings is not None and len(runs) * len(strings) <= self.variants:
                runs = _join(runs, strings)
                continue
            found.append(frozenset(runs))
            runs = set(strings) if strings is not None else {""}  # too many variants to join: a new run starts
            if strings is None:
                found.extend(self._item(op, arg))
        found.append(frozenset(runs))
        return [req for req in found if "" not in req]

    def _fixed(self, items) -> set[str] | None:
        """The strings a whole sequence can match, when they are few; None otherwise."""
        strings = {""}
        for op, arg in items:
            item = self._strings(op, arg)
            if item is None or len(strings) * len(item) > self.variants:
                return None
            strings = _join(strings, item)
        return strings

    def _strings(self, op, arg) -> set[str] | None:
        """The folded strings one item can match, when they are few ("[oa]", "(?:first|second)", "\\s+" as " ")."""
        if op is C.LITERAL:
            return {fold(chr(arg))}
        if op is C.AT:
            return {""}  # \b, ^, $ take no room: the literals around them are contiguous
        if op is C.IN:
            return self._class(arg)
        if op is C.SUBPATTERN:
            return self._fixed(arg[-1])
        if op is C.ATOMIC_GROUP:
            return self._fixed(arg)
        if op is C.BRANCH:
            union: set[str] = set()
            for alternative in arg[1]:
                strings = self._fixed(alternative)
                if strings is None or len(union | strings) > self.variants:
                    return None
                union |= strings
            return union
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            return self._repeated(*arg)
        return None

    def _class(self, items) -> set[str] | None:
        """The folded characters of a short class ("[oa]", "[ \\t]", "[\\s,]"); None for ranges, \\w, negations."""
        chars = set()
        for kind, value in items:
            if kind is C.LITERAL:
                chars.add(fold(chr(value)))
            elif kind is C.CATEGORY and value is C.CATEGORY_SPACE:
                chars.add(" ")
            else:
                return None
        return chars if len(chars) <= self.variants else None

    def _repeated(self, low: int, high: int, sub) -> set[str] | None:
        """The strings of a repeat: "\\s+" is one space, "(?:x)?" is x or nothing, "x{2}" is xx."""
        strings = self._fixed(sub)
        if strings is None:
            return None
        if strings == {" "}:
            return {" "} if low >= 1 else {"", " "}  # any number of blanks folds to one space
        if (low, high) == (0, 1):
            return strings | {""} if len(strings) < self.variants else None
        if low == high and len(strings) ** low <= self.variants:
            found = {""}
            for _ in range(low):
                found = _join(found, strings)
            return found
        return None

    def _best(self, found: list[frozenset[str]]) -> frozenset[str] | None:
        """The most selective of some requirements."""
        useful = [req for req in found if _useful(req)]
        return max(useful, key=_rank) if useful else None

    def _item(self, op, arg) -> list[frozenset[str]]:
        """The requirements of one item that is not fixed."""
        if op is C.SUBPATTERN:
            return self._sequence(list(arg[-1]))
        if op is C.ATOMIC_GROUP:
            return self._sequence(list(arg))
        if op is C.BRANCH:
            union: set[str] = set()
            for alternative in arg[1]:
                best = self._best(self._sequence(list(alternative)))
                if best is None:
                    return []
                union |= best
            return [frozenset(union)]
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            low, _, sub = arg
            return self._sequence(list(sub)) if low >= 1 else []
        if op is C.ASSERT:
            direction, sub = arg
            return self._sequence(list(sub)) if direction == 1 else []  # a lookahead's words are in the text too
        return []


class _Index:
    """Every requirement of every phrase, and which of them each text being read meets.

    A text the readers scan whole (a `Text`) is registered, so that even a short note is indexed once instead of
    being scanned by every pattern; any other long string (a window that happens to be long) is indexed in a
    single scratch slot. Entries are keyed by the string object: the same object, the same answer.

    One scan per text finds every literal in it: a trie of the literals is tried at every offset (inside a
    lookahead, so overlapping literals are all seen); the trie gives the longest literal starting there, and
    every shorter literal starting there is one of its prefixes, so the set found is exact. Each literal found
    then stands for the requirements it (or one of its prefixes) meets, worked out once when the trie is built.
    """

    def __init__(self) -> None:
        self.requirements: set[frozenset[str]] = set()
        self.literals: set[str] = set()
        self.scanner: re.Pattern | None = None
        self.meets: dict[str, frozenset[frozenset[str]]] = {}  # longest literal found → the requirements met
        self.text: str | None = None
        self.met: frozenset[frozenset[str]] = frozenset()
        self.documents: dict[int, tuple[str, frozenset[frozenset[str]]]] = {}  # id → (the text, kept alive; met)

    def add(self, requirement: frozenset[str]) -> None:
        """Register a phrase's requirement (at import time)."""
        if requirement not in self.requirements:
            self.requirements.add(requirement)
            self.literals |= requirement
            self.scanner = None

    def register(self, text: str) -> None:
        """Index a text that many patterns will scan whole, whatever its length (the oldest entry makes room)."""
        if id(text) not in self.documents:
            if len(self.documents) >= _DOCUMENTS:
                del self.documents[next(iter(self.documents))]
            self.documents[id(text)] = (text, self._scan(text))

    def known(self, text: str) -> frozenset[frozenset[str]] | None:
        """The requirements `text` meets if it is indexed (registered, or long), else None: scanning it is cheaper."""
        entry = self.documents.get(id(text))
        if entry is not None and entry[0] is text:
            return entry[1]
        return self.holds(text) if len(text) >= _MIN_TEXT else None

    def holds(self, text: str) -> frozenset[frozenset[str]]:
        """The requirements a long unregistered string meets, computed once per string object."""
        if text is not self.text:
            self.met = self._scan(text)
            self.text = text
        return self.met

    def _scan(self, text: str) -> frozenset[frozenset[str]]:
        """The registered requirements `text` meets."""
        if self.scanner is None:
            self._build()
        found = set(self.scanner.findall(fold(text)))
        return frozenset().union(*(self.meets[item] for item in found)) if found else frozenset()

    def _build(self) -> None:
        self.scanner = re.compile(f"(?=({_trie(self.literals)}))", re.S)
        owners: dict[str, set[frozenset[str]]] = {}
        for requirement in self.requirements:
            for literal in requirement:
                owners.setdefault(literal, set()).add(requirement)
        self.meets = {item: frozenset().union(*(owners.get(item[:end], ()) for end in range(1, len(item) + 1)))
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

    __slots__ = ("compiled", "pattern", "requirements")

    def __init__(self, compiled, requirements: tuple[frozenset[str], ...]) -> None:
        self.compiled = compiled
        self.requirements = requirements
        self.pattern = compiled.pattern
        for requirement in requirements:
            _INDEX.add(requirement)

    def possible(self, text: str) -> bool:
        """False when the text fails one of the pattern's requirements (so the pattern cannot match it).

        Called for every pattern on every text, mostly to say False: kept to a dict lookup and a few set lookups.
        """
        if not self.requirements:
            return True
        entry = _INDEX.documents.get(id(text))
        if entry is not None and entry[0] is text:
            met = entry[1]
        else:
            met = _INDEX.known(text)
            if met is None:
                return True
        for requirement in self.requirements:
            if requirement not in met:
                return False
        return True

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
        return f"Phrase({self.pattern!r}, requirements={self.requirements!r})"
