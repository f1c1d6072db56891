"""A literal prefilter for phrase patterns: words a pattern cannot match without, checked before the regex runs.

Most phrase patterns match no note at all, and the regex engine pays for a scan of the whole text to find that
out. From the pattern's syntax tree we derive a small set of literal strings of which every match contains at
least one (the classic "required factors" of RE2/Hyperscan). One scan of the case-folded text finds which of
all the literals it holds; a set test then rules a pattern out. Sets are computed once, at compile time, and are
only ever a necessary condition: when in doubt (classes, optional parts) a pattern has none and the regex runs.

A pattern that may match is also told where its scan can start (see `_Anchor`): its matches begin at, or a few
known characters before, one of the strings of a run near its start, so nothing before the first of them can
start a match.
"""

from __future__ import annotations

import re
from functools import cache
from re import _constants as C  # noqa: N812 - the standard library's own parser, not a private copy
from re import _parser as sre_parse

import regex

_MIN_TEXT = 160  # shorter strings (windows, clauses) are cheaper to scan than to fold
_MAX_REQUIREMENTS = 3  # requirements tested per pattern: the most selective ones
_MAX_VARIANTS = 16  # a run of fixed items may stand for up to this many strings ("altr[oa]", "(?:first|second)")
# Every character `\s` matches (in `re` or in `regex`) is a blank: the index sees them all as " ". A class
# rather than str.translate: the regex engine skips the text's other characters far faster than translate maps them.
_OTHER_BLANKS = re.compile("[\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_BLANK_RUN = re.compile(" {2,}")
_ANCHOR_VARIANTS = 128  # an anchor is looked for by one regex: it may stand for many strings ("january|…")
_KEPT = 32  # texts registered for reading whole: a note, its blanked copy, its forward, labelled values
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


def anchor(pattern: str, flags: int) -> _Anchor | None:
    """Where a scan of the pattern may start in a text (see `_Anchor`), or None when nothing is known."""
    try:
        tree = sre_parse.parse(pattern, flags & (re.I | re.M | re.S | re.U | re.X))
    except Exception:  # syntax only `regex` knows
        return None
    found = _Anchors(_ANCHOR_VARIANTS).bound(list(tree))
    if found is None or len(found[1]) == len(_ASCII):
        return None
    return _Anchor(*found)


def fold(text: str) -> str:
    """What literals are compared in: case-folded, every run of blanks one plain space (so that "\\s+" in a
    pattern is the literal " ", whatever blanks the text has there)."""
    return _BLANK_RUN.sub(" ", _OTHER_BLANKS.sub(" ", text).casefold())


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
        """The folded characters of a short class ("[oa]", "[1-4]", "[ \\t]", "[\\s,]"); None for \\w, negations."""
        chars = set()
        for kind, value in items:
            if kind is C.LITERAL:
                chars.add(fold(chr(value)))
            elif kind is C.RANGE and value[1] - value[0] < self.variants:
                chars.update(fold(chr(code)) for code in range(value[0], value[1] + 1))
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


class _Anchors(_Requirements):
    """Anchors read off the syntax tree: the first useful run of a sequence, looked for inside a group, in every
    alternative of an alternation, or in the first of a repeat when the sequence opens with one."""

    def bound(self, items) -> tuple[set[str], frozenset[str]] | None:
        """The anchor strings of a sequence, and the ASCII characters a match may have before them."""
        allowed: frozenset[str] = frozenset()
        for index, (op, arg) in enumerate(items):
            run = self._run(items[index:])
            if run is not None:
                if any(item.startswith(" ") for item in run):
                    run = {item.lstrip(" ") for item in run}  # blanks are everywhere: look for what follows them
                    allowed |= _BLANK_CHARS
                return (run, allowed) if all(len(item) >= _MIN_LITERAL for item in run) else None
            inner = self._inner(op, arg)
            if inner is not None:
                return inner[0], allowed | inner[1]
            consumed = _consumed(op, arg)
            if consumed is None:
                return None
            allowed |= consumed
        return None

    def _run(self, items) -> set[str] | None:
        """The strings of the run at the head of `items`, when none is empty or short; zero-width items
        (\\b, lookarounds) take no room."""
        runs = {""}
        for op, arg in items:
            if op in (C.ASSERT, C.ASSERT_NOT):
                continue
            strings = self._strings(op, arg)
            if strings is None or len(runs) * len(strings) > self.variants:
                break
            runs = _join(runs, strings)
        return runs if all(len(item.strip()) >= _MIN_LITERAL for item in runs) else None

    def _inner(self, op, arg) -> tuple[set[str], frozenset[str]] | None:
        """The bound inside an item that is not fixed: its group, each of its alternatives, its first repeat."""
        if op is C.SUBPATTERN:
            return self.bound(list(arg[-1]))
        if op is C.ATOMIC_GROUP:
            return self.bound(list(arg))
        if op in _REPEATS and arg[0] >= 1:
            return self.bound(list(arg[2]))
        if op is not C.BRANCH:
            return None
        strings: set[str] = set()
        allowed: frozenset[str] = frozenset()
        for alternative in arg[1]:
            found = self.bound(list(alternative))
            if found is None:
                return None
            strings |= found[0]
            allowed |= found[1]
        return strings, allowed


_ASCII = tuple(chr(code) for code in range(128))
_CATEGORIES = {C.CATEGORY_DIGIT: r"\d", C.CATEGORY_NOT_DIGIT: r"\D", C.CATEGORY_SPACE: r"\s",
               C.CATEGORY_NOT_SPACE: r"\S", C.CATEGORY_WORD: r"\w", C.CATEGORY_NOT_WORD: r"\W"}
_REPEATS = (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT)
_BLANK_CHARS = frozenset("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f ")  # the ASCII characters `fold` makes " "


def _char(code: int) -> str:
    """One character as an escape both `re` and `regex` read, whatever it is."""
    return f"\\U{code:08x}"


@cache
def _ascii_matching(source: str) -> frozenset[str]:
    """The ASCII characters a one-character pattern matches, case ignored: asked of `regex` itself."""
    compiled = regex.compile(source, regex.I | regex.V0)
    return frozenset(char for char in _ASCII if compiled.fullmatch(char))


def _consumed(op, arg) -> frozenset[str] | None:
    """The ASCII characters one item can take up (any case), or None when it can take up any character."""
    if op is C.LITERAL:
        return _ascii_matching(_char(arg))
    if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
        return frozenset()  # zero width
    if op is C.IN:
        found: set[str] = set()
        for kind, value in arg:
            if kind is C.LITERAL:
                found |= _ascii_matching(_char(value))
            elif kind is C.RANGE:
                found |= _ascii_matching(f"[{_char(value[0])}-{_char(value[1])}]")
            elif kind is C.CATEGORY and value in _CATEGORIES:
                found |= _ascii_matching(_CATEGORIES[value])
            else:
                return None  # a negation, or something rarer: anything
        return frozenset(found)
    children = arg[-1] if op is C.SUBPATTERN else arg[1] if op is C.BRANCH else arg[2] if op in _REPEATS \
        else arg if op is C.ATOMIC_GROUP else None
    if children is None:
        return None  # ".", a backreference, a negated literal: anything
    if op is C.BRANCH:
        children = [item for alternative in children for item in alternative]
    found = set()
    for item in children:
        consumed = _consumed(*item)
        if consumed is None:
            return None
        found |= consumed
    return frozenset(found)


class _Anchor:
    """Where the scan of a pattern may start in a text, so that the regex engine skips what cannot hold a match.

    Every match of the pattern holds one of the strings of a run of fixed items (the anchor), and what a match
    has before its anchor is made of some ASCII characters only (`allowed`; other characters, non-ASCII ones
    included, are assumed allowed). So no match starts before the first anchor in the text, less the run of
    allowed characters right before it: a scan that starts there finds the same matches, since the regex engine
    still sees the text before its starting offset (for \\b and lookbehinds). The anchor is looked for in the
    text case-folded with blanks made spaces, which keeps offsets when folding keeps the length.
    """

    def __init__(self, strings: set[str], allowed: frozenset[str]) -> None:
        self.find = re.compile(_trie(strings, blank=" +"))
        stops = "".join(_char(ord(char)) for char in _ASCII if char not in allowed)
        self.stop = regex.compile(f"[{stops}]", regex.REVERSE | regex.V0) if allowed else None

    def start(self, text: str, low: str, at: int = 0) -> int | None:
        """The offset from `at` on where the scan of `text` may start (`low` is its folded copy); None when no
        match can start from `at` on."""
        found = self.find.search(low, at)
        if found is None:
            return None
        if self.stop is None:
            return found.start()  # a match starts at its anchor
        stop = self.stop.search(text, at, found.start())
        return stop.end() if stop else at

    def matches(self, compiled, text: str, low: str, start: int):
        """The matches of `compiled` in `text` from `start`, as finditer finds them, each looked for from the next
        anchor on: for a pattern that cannot skip ahead by itself (it has a prefix before its anchor), a scan of
        the stretches between anchors costs more than finding the next anchor."""
        while start is not None:
            match = compiled.search(text, start)
            if match is None:
                return
            yield match
            start = self.start(text, low, match.end())  # matches hold their anchor, so none is empty


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
        # id → (the text, kept alive; the requirements it meets; its folded copy when offsets agree, else None)
        self.documents: dict[int, tuple[str, frozenset[frozenset[str]], str | None]] = {}

    def add(self, requirement: frozenset[str]) -> None:
        """Register a phrase's requirement (at import time)."""
        if requirement not in self.requirements:
            self.requirements.add(requirement)
            self.literals |= requirement
            self.scanner = None

    def register(self, text: str) -> frozenset[frozenset[str]]:
        """Index a text that many patterns will scan whole, whatever its length (the oldest entry makes room);
        the requirements it meets."""
        entry = self.documents.get(id(text))
        if entry is None or entry[0] is not text:
            if len(self.documents) >= _KEPT:
                del self.documents[next(iter(self.documents))]
            low = _OTHER_BLANKS.sub(" ", text).casefold()
            entry = (text, self._scan(_BLANK_RUN.sub(" ", low)), low if len(low) == len(text) else None)
            self.documents[id(text)] = entry
        return entry[1]

    def known(self, text: str) -> frozenset[frozenset[str]] | None:
        """The requirements `text` meets if it is indexed (registered, or long), else None: scanning it is cheaper."""
        entry = self.documents.get(id(text))
        if entry is not None and entry[0] is text:
            return entry[1]
        return self.holds(text) if len(text) >= _MIN_TEXT else None

    def holds(self, text: str) -> frozenset[frozenset[str]]:
        """The requirements a long unregistered string meets, computed once per string object."""
        if text is not self.text:
            self.met = self._scan(fold(text))
            self.text = text
        return self.met

    def _scan(self, folded: str) -> frozenset[frozenset[str]]:
        """The registered requirements a text meets, given its folded copy."""
        if self.scanner is None:
            self._build()
        found = set(self.scanner.findall(folded))
        return frozenset().union(*(self.meets[item] for item in found)) if found else frozenset()

    def _build(self) -> None:
        self.scanner = re.compile(f"(?=({_trie(self.literals)}))", re.S)
        owners: dict[str, set[frozenset[str]]] = {}
        for requirement in self.requirements:
            for literal in requirement:
                owners.setdefault(literal, set()).add(requirement)
        self.meets = {item: frozenset().union(*(owners.get(item[:end], ()) for end in range(1, len(item) + 1)))
                      for item in self.literals}


def _trie(words, blank: str = " ") -> str:
    """A regex that matches, at a given offset, the longest of `words` starting there (a space in them matches
    `blank`).

    A word that ends at a node is an empty last branch there, which the engine takes more cheaply than an
    optional group.
    """
    root: dict = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict) -> str:
        branches = [(blank if char == " " else re.escape(char)) + emit(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        if "" in node:
            return f"(?:{'|'.join(branches)}|)"
        return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"

    return emit(root)


_INDEX = _Index()
_DOCUMENTS = _INDEX.documents


def register(text: str) -> frozenset[frozenset[str]]:
    """Index `text` once for every pattern that will scan it whole (a note, however short): the requirements it
    meets, for `Phrase.needs`."""
    return _INDEX.register(text)


class Phrase:
    """A compiled pattern behind its literal prefilter; the same methods as a compiled pattern."""

    __slots__ = ("anchor", "compiled", "needs", "pattern", "requirements")

    def __init__(self, compiled, requirements: tuple[frozenset[str], ...], anchor: _Anchor | None = None) -> None:
        self.compiled = compiled
        self.requirements = requirements
        self.needs = frozenset(requirements)  # the pattern may match a text only if the text meets all these
        self.anchor = anchor
        self.pattern = compiled.pattern
        for requirement in requirements:
            _INDEX.add(requirement)

    def possible(self, text: str) -> bool:
        """False when the text fails one of the pattern's requirements (so the pattern cannot match it)."""
        return self.start(text) is not None

    def start(self, text: str) -> int | None:
        """Where a scan of `text` may start (see `_Anchor`), or None when the pattern cannot match it."""
        found = self._where(text)
        return None if found is None else found[0]

    def _where(self, text: str) -> tuple[int, str | None] | None:
        """Where a scan of `text` may start, and the text's folded copy when the anchor can use it; None when the
        text fails one of the pattern's requirements, or holds no anchor.

        Called for every pattern on every text, mostly to say None: kept to a dict lookup and a few set lookups.
        """
        if not self.requirements:
            return 0, None
        entry = _DOCUMENTS.get(id(text))
        if entry is not None and entry[0] is text:
            met, low = entry[1], entry[2]
        else:
            met, low = _INDEX.known(text), None
            if met is None:
                return 0, None
        if not met.issuperset(self.requirements):
            return None
        if self.anchor is None or low is None:
            return 0, None
        start = self.anchor.start(text, low)
        return None if start is None else (start, low)

    def search(self, text: str, *args):
        if args:
            return self.compiled.search(text, *args) if self.possible(text) else None
        start = self.start(text)
        return None if start is None else self.compiled.search(text, start)

    def finditer(self, text: str, *args):
        if args:
            return self.compiled.finditer(text, *args) if self.possible(text) else iter(())
        found = self._where(text)
        if found is None:
            return iter(())
        start, low = found
        if low is None or self.anchor.stop is None:
            return self.compiled.finditer(text, start)
        return self.anchor.matches(self.compiled, text, low, start)

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
