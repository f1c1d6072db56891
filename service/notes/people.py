"""Decision makers: role nouns near capitalised names ("their CFO, Maria Rossi", "Helen Park (Procurement)"),
and roles alone ("the board") where the sentence is about deciding.

A role is a lexicon entry (its key is the normalised role: "cfo", "board") or, for titles the lexicon does not
know ("Head of QC", "responsabile qualità"), the title as written in lowercase. The addressee, a contact, a
colleague and people copied are left out: they are who the rep writes to or with, not who decides.

Every person found is a `Candidate` with what the rules made of it; without a model the rules' filters decide
(`Candidate.kept`), with one a learned judge does (service/notes/learned.py `judges`), among the same candidates and
a few more the rules never keep: each role alone and with every other name near it in its sentence, as one group of
which the judge takes one reading at most (`_assemble`), and every other name of the text alone (`_lone_names`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

from service.notes.model import DecisionMaker, Evidence
from service.notes.phrases import Phrases, all_phrases, common_words, compile_phrase
from service.notes.text import FEATURE_WORD, Text, add_words_around

# Latin letters with their accents, Latin Extended-A and -B included ("Zielińska", "Kovač", "Łukasz").
_EXTENDED = [chr(code) for code in range(0x100, 0x250)]
_UPPER = "A-ZÀ-ÖØ-Ý" + "".join(char for char in _EXTENDED if char.isupper())
_LOWER = "a-zß-öø-ÿ" + "".join(char for char in _EXTENDED if char.islower())
# A surname's prefix written joined to a capital: "McLeod", "MacDonald", "DeLuca", "DiNapoli", "LaRue".
_JOINED_PREFIX = rf"(?:(?:Mc|Mac|De|Di|Da|Du|La|Le|Van)(?=[{_UPPER}][{_LOWER}]))"
_NAME_WORD = (rf"(?:[{_UPPER}]['’])?{_JOINED_PREFIX}?[{_UPPER}][{_LOWER}]+(?:['’][{_UPPER}]?[{_LOWER}]+)?"  # "O'Neill", "Sant'Oronzo"
              rf"(?:-{_JOINED_PREFIX}?[{_UPPER}][{_LOWER}]+)?")
_PARTICLE = r"(?:de|di|da|del|della|van|von|der|le|la|dos|du|mc|Ó|Ní|Nic|Mac)"  # "Seán Ó Súilleabháin"
_NAME = rf"(?P<name>{_NAME_WORD}(?:(?:[ \t]+|[ \t]*\n[ \t]*)(?:{_PARTICLE}[ \t]+)?{_NAME_WORD}){{0,2}})"
_WINDOW = 70
_ACRONYM = re.compile(r"^[A-Z]{2,4}$")
_AS_WRITTEN = "*"  # the lexicon key of titles kept as written
_LEADING = re.compile(r"^(?:the|their|its|your|our|his|her|a|an|new|il|la|lo|l'|i|gli|le|nuov[oa]|del|dal|al|nel|"
                      r"della|dalla|alla|nella|dell'|dall'|all'|nell'|col|coi|sul|sulla|ai|dai|nei|dei|vostr[oa]|lor[oa]|su[oa]|tu[oa])\s*(?<=\s|')", re.I)
# Titles kept before a surname alone ("Mr Hughes", "dott. Rossi"); spelled-out ones ("signora") are left out.
_SHORT_TITLE = re.compile(r"^(?:mrs?|ms|miss|dr|prof|dott|dott\.?ssa|ing|avv|geom|rag|sig|sig\.?r[ae]|sig\.?na)\.?$", re.I)


@dataclass(frozen=True)
class PeopleRules:
    """One language's compiled rules for people."""

    role_keys: tuple[str, ...]
    roles: re.Pattern
    titles: re.Pattern
    acronyms: re.Pattern
    role_then_name: re.Pattern
    name_then_role: re.Pattern
    ours: re.Pattern
    context: re.Pattern
    not_names: frozenset[str]
    company_words: frozenset[str]
    title_before: re.Pattern
    greeting: re.Pattern
    not_deciding_before: re.Pattern
    not_deciding_after: re.Pattern
    titled: re.Pattern
    bracketed: re.Pattern
    alone: frozenset[str]
    titled_alone: bool
    unnamed_dropped: frozenset[str]
    name_and: re.Pattern
    plural_role: re.Pattern


def _split_top(pattern: str) -> list[str]:
    """Split a regex on its top-level "|"."""
    parts, depth, current = [], 0, ""
    for char in pattern:
        depth += char == "(" and 1 or char == ")" and -1 or 0
        if char == "|" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current]


def _role_alternation(roles: dict[str, str], acronyms: bool, written: bool = False) -> str:
    """One named group per role; acronyms ("CFO", "AD") apart, since they must match case, and titles kept as
    written apart, so that a longer title ("comitato investimenti") is not hidden by a role starting at the same
    word ("il comitato")."""
    groups = []
    for index, (key, pattern) in enumerate(roles.items()):
        if (key == _AS_WRITTEN) != written:
            continue
        parts = [part for part in _split_top(pattern) if bool(_ACRONYM.match(part)) == acronyms]
        if parts:
            groups.append(rf"(?P<r{index}>{'|'.join(parts)})")
    return r"\b(?:" + "|".join(groups) + r")\b"


def _merged_roles(phrases: Phrases) -> dict[str, str]:
    """The language's roles, then the roles of the languages its notes borrow from ("il plant manager")."""
    roles = dict(phrases.table["people"]["roles"])
    for other in all_phrases():
        if other.language in phrases.table["people"]["words"].get("borrows", []):
            for key, pattern in other.table["people"]["roles"].items():
                roles[key] = f"{roles[key]}|{pattern}" if key in roles else pattern
    return roles


def _build_rules(phrases: Phrases) -> PeopleRules:
    """Compile the people rules of one language."""
    table = phrases.table["people"]
    words = table["words"]
    roles = _merged_roles(phrases)
    honorific = rf"(?:(?i:{words['honorifics']})[ \t]*)?"  # "Sig.ra", "dott.", "Mr": any case
    return PeopleRules(
        role_keys=tuple(roles),
        roles=compile_phrase(_role_alternation(roles, acronyms=False)),
        titles=compile_phrase(_role_alternation(roles, acronyms=False, written=True)),
        acronyms=compile_phrase(_role_alternation(roles, acronyms=True), re.U),
        role_then_name=compile_phrase(rf"^(?:{words['role_name']}){honorific}{_NAME}\b", re.U),
        name_then_role=compile_phrase(rf"{_NAME}(?:{words['name_role']})$", re.U),
        ours=compile_phrase(words["ours"]),
        context=compile_phrase(words["decision_context"]),
        not_names=frozenset(table["words"]["not_names"]),
        company_words=frozenset(table["words"]["company_words"]),
        title_before=compile_phrase(rf"(?:^|[^\w.])(?P<title>(?i:{words['honorifics']}))[ \t]*$", re.U),
        greeting=compile_phrase(words["greeting"], re.I | re.M),
        not_deciding_before=compile_phrase(words["not_deciding_before"]),
        not_deciding_after=compile_phrase(words["not_deciding_after"]),
        titled=compile_phrase(rf"(?:^|(?<=[^\w.]))(?P<title>(?i:{words['honorifics']}))[ \t]*{_NAME}", re.U),
        bracketed=compile_phrase(rf"{_NAME}[ \t]*\((?P<role>{words['bracketed_role']})\)", re.U),
        alone=frozenset(words["decides_alone"]),
        titled_alone=bool(words["titled_alone"]),
        unnamed_dropped=frozenset(words["only_named"]),
        name_and=compile_phrase(rf"^(?:{words['name_and']}){honorific}{_NAME}\b", re.U),
        plural_role=compile_phrase(words["plural_role"]),
    )


@cache
def rules_for(language: str) -> PeopleRules:
    """The compiled people rules of a language."""
    return _build_rules(next(p for p in all_phrases() if p.language == language))


for _phrases in all_phrases():  # compile at import, once per language
    rules_for(_phrases.language)


@dataclass
class _Role:
    start: int
    end: int
    key: str  # the normalised role
    written: bool = False  # a title the lexicon does not know, kept as written


def _find_roles(text: Text, rules: PeopleRules) -> list[_Role]:
    """Every role noun in the text, longest first where they overlap."""
    found = []
    for pattern in (rules.roles, rules.titles, rules.acronyms):
        for match in _overlapping(pattern, text.clean):
            key = rules.role_keys[int(match.lastgroup[1:])]
            written = key == _AS_WRITTEN
            found.append(_Role(match.start(), match.end(), _as_written(match.group()) if written else key, written))
    keyed = [role for role in found if not role.written]  # "the finance director": cfo, not a title as written
    found = [role for role in found if not role.written
             or not any(role.start <= other.start and other.end == role.end for other in keyed)]
    kept: list[_Role] = []
    for role in sorted(found, key=lambda r: -(r.end - r.start)):
        if all(role.end <= other.start or role.start >= other.end for other in kept):
            kept.append(role)
    return sorted(kept, key=lambda r: r.start)


def _overlapping(pattern: re.Pattern, text: str):
    """Every match, overlapping ones included: "il Direttore Sanitario" holds "il Direttore" (general manager) and
    "Direttore Sanitario" (medical director), and the longer is kept."""
    match = pattern.search(text)
    while match:
        yield match
        match = pattern.search(text, match.start() + 1)


# A body decides as one and has no person's name: "the board of Apulia Logistica", "il CdA di Rete Srl", "the
# committee, Monday" name a company, a place or a day. In the blind corpus's train labels bodies are unnamed 756
# times in 777; the 21 named are members (a chair, a consigliere, an assessore), whose roles are not bodies.
_BODY = re.compile(r"\b(?:board|committee|council|assembly|panel|trustees|governors|management|consiglio|comitato|giunta|"
                   r"assemblea|cda|steering group)\b")
_MEMBER = re.compile(r"\b(?:member|members|chair|chairman|chairwoman|president|presidente|head|councillor|consigliere|"
                     r"assessore|secretary|treasurer|director|direttore)\b")


def _is_body(role: str) -> bool:
    """Whether a role (a lexicon key or a title as written, lowercase) is a body rather than a person."""
    return bool(_BODY.search(role)) and not _MEMBER.search(role)


def role_as_written(role: str) -> str:
    """A role as the note writes it, spaces folded and without a leading article ("their CFO" → "CFO")."""
    role = " ".join(role.split())
    while _LEADING.match(role):
        role = _LEADING.sub("", role, count=1)
    return role


# Whose body or officer a title names, before it, in up to three words: "the firm's management committee",
# "Coastal Carolina's Board"; not a title's own words ("Head of Children's Services", "the Women's Health
# Committee", "the Parents' Committee").
_OWNER = re.compile(r"^(?!.*\b(?:of|for|and)\b.*['’]s\s)(?:[\w&.-]+\s+){0,2}(?!(?:women|men|children|people)['’])"
                    r"[\w&.-]+['’]s\s+(?=\S)", re.I)


def _as_written(title: str) -> str:
    """A title the lexicon does not know, as its normalised role: lowercase, without "the" or "new", nor whose
    it is ("the bank's Vendor Management Committee": "vendor management committee"; the role as written keeps it)."""
    return role_as_written(_OWNER.sub("", role_as_written(title))).lower()


# An Italian body's name goes on after its head word: "il comitato di direzione", "l'assemblea dei soci",
# "la giunta comunale", "l'assemblea straordinaria dei soci"; not into a date ("del 9", "di settembre", "di sabato").
_BODY_HEAD = re.compile(r"(?:comitato|commissione|consiglio|assemblea|giunta|collegio)", re.I)
_WHEN = (r"gennaio|febbraio|marzo|aprile|maggio|giugno|luglio|agosto|settembre|ottobre|novembre|dicembre|"
         r"luned[iì]|marted[iì]|mercoled[iì]|gioved[iì]|venerd[iì]|sabato|domenica|oggi|ieri|domani|stamattina|"
         r"stasera|mese|settimana|anno|fine|inizio|met[àa]|quest[oa]|prossim[oaie]|scors[oaie]|natale|pasqua")
# The adjectives that name a body ("giunta comunale", "consiglio direttivo", "commissione giudicatrice").
_BODY_ADJECTIVE = (r"comunal[ei]|regional[ei]|provincial[ei]|cameral[ei]|nazional[ei]|central[ei]|general[ei]|"
                   r"aziendal[ei]|editorial[ei]|sindacal[ei]|direttiv[oaie]|esecutiv[oaie]|consultiv[oaie]|"
                   r"amministrativ[oaie]|operativ[oaie]|straordinari[oaie]|ordinari[oaie]|giudicatric[ei]|"
                   r"tecnic[oaie]|scientific[oaie]|strategic[oaie]|intern[oaie]|ristrett[oaie]|permanent[ei]")
_BODY_TAIL = re.compile(
    rf"(?:[ \t]+(?i:{_BODY_ADJECTIVE})\b)?"
    rf"(?:[ \t]+(?i:di|dei|degli|della|dello|delle|del|d['’]|dell['’])[ \t]*(?!(?i:{_WHEN})\b)"
    r"(?:[A-ZÀ-Ý][\w'’]{2,}|(?![a-zà-ù]*(?:are|ere|ire)\b)[a-zà-ù]{3,}(?!['’\w])))?")  # not a verb: "di apprezzare"


def _written_body(text: Text, role: _Role) -> str:
    """A role as written; an Italian body's head word with the words that name it."""
    written = text.clean[role.start:role.end]
    words = role_as_written(written).split()
    if text.phrases.language != "it" or not _BODY_HEAD.fullmatch(words[0]) or len(words) > 2 \
            or len(words) == 2 and not _BODY_TAIL.fullmatch(" " + words[1]):
        return role_as_written(written)
    tail = _BODY_TAIL.match(text.clean, role.end)
    return role_as_written(written + (tail.group() if tail else ""))


def _clean_name(name: str | None, rules: PeopleRules, text: Text | None = None, at: int | None = None) -> str | None:
    """The name without words that are not names ("The", "Monday", role words); given where it stands in the
    `text`, without a sentence's first word when that is a common word of the language ("Understood Bob")."""
    if not name:
        return None
    words = [re.sub(r"['’]s$", "", word) for word in name.split()]  # "Herve's (ops chief)"
    if text is not None and at is not None and words[0] not in rules.not_names \
            and words[0].lower() in common_words(text.phrases.language) and _starts_sentence(text, at) \
            and not _named_inside(text, words[0]):
        words.pop(0)
        if not words:
            return None
    if words[-1] in rules.company_words or words[0] in rules.company_words:
        return None  # "Hall Veterinary Group": a signature's company, not a person
    for index, word in enumerate(words):  # "Maria Rossi\nThanks": a line break ends the name at a non-name
        if word in rules.not_names and index:
            words = words[:index]
            break
    while words and words[0] in rules.not_names:
        if len(words) > 1 and words[0] in _SURNAME_PARTICLES and text is not None and at is not None \
                and not _starts_sentence(text, at):
            break  # "l'ing. Della Penna", "il dott. Lo Presti": capitalised inside a sentence, the surname's own
        words.pop(0)
    while words and words[0].islower():  # "di Amministrazione" of "Consiglio di Amministrazione"
        words.pop(0)
    while words and words[-1] in rules.not_names:
        words.pop()
    return " ".join(words) or None


def _named_inside(text: Text, word: str) -> bool:
    """Whether the text also writes `word` capitalised inside a sentence ("ask Will", "to Will Turner"): a name."""
    return any(not _starts_sentence(text, at) for at in _whole_word_starts(text.clean, word))


_SURNAME_PARTICLES = frozenset({"De", "Di", "Da", "Del", "Della", "Dalla", "Lo", "La", "Le", "Van", "Von"})


def _starts_sentence(text: Text, at: int) -> bool:
    """Whether only blanks or a bullet stand between the sentence's (or line's) start and `at`."""
    return not text.clean[text.sentence_span(at)[0]:at].strip(" \t\n-•*>")


def _name_near(text: Text, role: _Role, rules: PeopleRules) -> tuple[str | None, int, int]:
    """The name attached to a role, after it ("CFO, Maria Rossi") or before it ("Helen Park (Procurement)")."""
    after = rules.role_then_name.search(text.clean[role.end:role.end + _WINDOW])
    if after:
        name = _clean_name(after.group("name"), rules)
        if name:
            return _titled(text, name, role.end + after.start("name"), rules), role.start, role.end + after.end()
    window = max(0, role.start - _WINDOW)
    before = rules.name_then_role.search(text.clean[window:role.start])
    if before and _joined_explicitly(before.group()[len(before.group("name")):]):
        name = _clean_name(before.group("name"), rules, text, window + before.start("name"))
        if name:
            return _titled(text, name, window + before.start("name"), rules), role.start - len(before.group()), role.end
    return None, role.start, role.end


def _names_sharing(text: Text, role: _Role, name: str | None, end: int, rules: PeopleRules):
    """The names after the first that share a plural role ("the other partners (Dr O'Neill and Dr Byrne)",
    "i consiglieri sig.ra Locatelli e sig. Benigni")."""
    if not name or end <= role.end or not rules.plural_role.search(text.clean[role.start:role.end]):
        return
    for _ in range(3):
        more = rules.name_and.match(text.clean[end:end + _WINDOW])
        other = _clean_name(more.group("name"), rules) if more else None
        if not other:
            return
        yield _titled(text, other, end + more.start("name"), rules), end + more.end()
        end += more.end()


def _titled(text: Text, name: str, start: int, rules: PeopleRules) -> str:
    """A surname alone keeps its title as written ("Mr Hughes", "Dr. Patel"); a full name goes without it."""
    words = name.split()
    if len(words) > 1:
        return name
    at = text.clean.find(name, start)
    title = rules.title_before.search(text.clean[max(0, at - 15):at]) if at >= 0 else None
    return f"{title.group('title')} {name}" if title and _SHORT_TITLE.match(title.group("title")) else name


def _not_deciding(text: Text, name: str | None, start: int, end: int, rules: PeopleRules) -> bool:
    """A contact, a colleague, someone copied or gone: named in the note, but not deciding."""
    if not name:
        return False
    head = text.clean[max(0, start - 30):start]
    title = rules.title_before.search(head)  # "Referente: Sig. Ettore Bussi"
    head = head[:title.start("title")] if title else head
    return bool(rules.not_deciding_before.search(head) or rules.not_deciding_after.match(text.clean[end:end + 80]))


def _addressees(text: Text, rules: PeopleRules) -> set[str]:
    """The capitalised words of the greeting line ("Dear Paul, dear Rebecca", "Gentile Sig.ra Bormolini")."""
    greeting = rules.greeting.search(text.clean[:200])
    return set(re.findall(r"[A-ZÀ-Ý][\w'’-]+", greeting.group())) if greeting else set()


def _joined_explicitly(join: str) -> bool:
    """A name before a role needs a comma, bracket, dash or linking word ("Maria Rossi, their CFO")."""
    return bool(re.search(r"[,(\-–]|\b\w{2,}\b", join))


_NAME_LINE = re.compile(rf"(?:^|\n)[ \t]*{_NAME}[ \t]*\n[ \t]*$", re.U)


def _signature_title(text: Text, role: _Role) -> bool:
    """A title line under a name line ("Ernesto Malvezzi\nKey Account Manager - Sanità"): whoever signs, the
    rep or the customer, is not a third person who decides."""
    return bool(_NAME_LINE.search(text.clean[max(0, role.start - 60):role.start]))


def _is_ours(text: Text, start: int, rules: PeopleRules, source: str) -> bool:
    """"my manager", "our CFO" in the rep's words are on our side (in the customer's words they are theirs)."""
    return source == "note" and bool(rules.ours.search(text.clean[max(0, start - 20):start]))


# The kinds of candidates `candidates` offers (each candidate's "kind=" feature): a role with the name the rules put
# to it, the same role without it, the role with another name near it, a name sharing a plural role, a bracketed
# role, a title before a name, and a name alone.
KINDS = ("role", "bare", "near", "share", "bracket", "titled", "name")


@dataclass(frozen=True)
class Candidate:
    """Someone the rules found who may take part in the decision: whether the rules keep them, and what a judge
    weighs of them (`_features`)."""

    name: str | None
    role: str | None
    written: str | None
    start: int
    end: int
    kept: bool
    features: dict[str, float]
    group: int  # candidates of one group are readings of one role: at most one is taken


# Which candidates take part in the decision, given what each weighs: a learned judge (service/notes/learned.py)
# or, without one, the rules' own filters (`Candidate.kept`).
Judge = Callable[[list[dict[str, float]]], list[float | None]]


def find_decision_makers(text: Text, source: str = "note", judge: Judge | None = None,
                         found: list[Candidate] | None = None) -> tuple[list[DecisionMaker], list[Evidence]]:
    """The people who take part in the decision, with the phrase each was read from (`found`: the text's
    `candidates`, when the caller has them already)."""
    found = candidates(text, source) if found is None else found
    if judge and found:
        chosen = _assemble(found, judge([candidate.features for candidate in found]))
    else:
        chosen = [candidate for candidate in found if candidate.kept]
    people: dict[tuple, DecisionMaker] = {}
    evidence: list[Evidence] = []
    for candidate in chosen:
        person = DecisionMaker(candidate.name, candidate.role, candidate.written)
        key = (candidate.name.split()[-1].lower(),) if candidate.name else ("role", candidate.role)
        if key not in people:
            people[key] = person
            evidence.append(Evidence("decision_makers", text.original[candidate.start:candidate.end],
                                     candidate.start, candidate.end, _describe(person), source))
    return _drop_covered_roles(list(people.values())), evidence


def _assemble(found: list[Candidate], scores: list[float | None]) -> list[Candidate]:
    """The judged candidates as people, most probable first: one reading per role found, one role per name, and
    one mention per body (a later "the committee" is the "IT Strategy Committee" named before; the fuller name
    stays)."""
    taken: list[Candidate] = []
    for index in sorted((i for i, score in enumerate(scores) if score is not None), key=lambda i: -scores[i]):
        candidate = found[index]
        same = next((other for other in taken if _same_one(candidate, other)), None)
        if same is None:
            taken.append(candidate)
        elif candidate.group != same.group and _words(candidate.written) > _words(same.written):
            taken[taken.index(same)] = candidate
    for at, body in enumerate(taken):  # "la giunta" kept, "la Giunta comunale" written elsewhere: the fuller name
        if body.name:
            continue
        fuller = [other for other in found if not other.name and other.role == body.role
                  and _words(other.written) > _words(body.written) and not other.features.get("ours=True")
                  and other not in taken]
        if fuller:
            taken[at] = max(fuller, key=lambda other: (len(_words(other.written)), -other.start))
    return sorted(taken, key=lambda candidate: candidate.start)


def _words(role: str | None) -> frozenset[str]:
    return frozenset(FEATURE_WORD.findall(role.lower())) if role else frozenset()


def _same_one(one: Candidate, other: Candidate) -> bool:
    """Whether two candidates are readings of one person or body."""
    if one.group == other.group:
        return True
    if one.name or other.name:
        return bool(one.name and other.name and one.name.split()[-1].lower() == other.name.split()[-1].lower())
    if one.role == other.role:
        return True
    mine, theirs = _words(one.written), _words(other.written)
    return bool(mine and theirs) and (mine <= theirs or theirs <= mine)


def candidates(text: Text, source: str = "note") -> list[Candidate]:
    """Everyone a role noun, a bracketed role or a title points to, each marked kept or not by the rules: a role of
    ours or a signature's title line, a role alone outside a sentence about deciding, a contact or colleague; then
    every other name, which the rules never keep (`_lone_names`)."""
    rules = rules_for(text.phrases.language)
    addressees = _addressees(text, rules)
    about_deciding = _about_deciding(text, rules)
    found: list[Candidate] = []

    def add(kind: str, name: str | None, role: str | None, written: str | None, start: int, end: int, kept: bool,
            flags: dict[str, object], group: int | None = None) -> None:
        features = _features(text, kind, role if kind != "bracket" else "*", name, start, end, flags, source)
        found.append(Candidate(name, role, written, start, end, kept, features,
                               len(found) if group is None else group))

    for role in _find_roles(text, rules):
        ours, signature = _is_ours(text, role.start, rules, source), _signature_title(text, role)
        name, start, end = _name_near(text, role, rules) if not _is_body(role.key) else (None, role.start, role.end)
        addressee = bool(name and name.split()[-1] in addressees)
        if addressee:
            name, start, end = None, role.start, role.end  # "Kevin - the board approved it": Kevin is who reads it
        dropped = name is None and (role.key in rules.unnamed_dropped or role.key not in rules.alone
                                    and not about_deciding(role.start))
        not_deciding = _not_deciding(text, name, start, end, rules)
        kept = not (ours or signature or dropped or not_deciding)
        flags = {"ours": ours, "sig": signature, "addr": addressee, "unnamed_dropped": role.key in rules.unnamed_dropped,
                 "alone": role.key in rules.alone, "about": about_deciding(role.start), "notdec": not_deciding,
                 "asw": role.written, "rule": kept}
        written = _written_body(text, role)
        group = len(found)
        add("role", name, role.key, written, start, end, kept, flags)
        if not _is_body(role.key):
            if name:
                add("bare", None, role.key, written, role.start, role.end, False, {**flags, "rule": False}, group)
            for other, other_start, other_end, near in _names_around(text, role, name, rules):
                add("near", _titled(text, other, other_start, rules), role.key, written,
                    min(role.start, other_start), max(role.end, other_end), False,
                    {**flags, **near, "addr": other.split()[-1] in addressees, "rule": False,
                     "notdec": _not_deciding(text, other, other_start, other_start + len(other), rules)}, group)
        for other, other_end in _names_sharing(text, role, name, end, rules):
            add("share", other, role.key, written, start, other_end, kept, flags)
    for match in rules.bracketed.finditer(text.clean):
        name = _clean_name(match.group("name"), rules, text, match.start("name"))
        if not name:
            continue
        addressee, ours = name.split()[-1] in addressees, _is_ours(text, match.start(), rules, source)
        not_deciding = _not_deciding(text, name, match.start(), match.start("name") + len(match.group("name")), rules)
        kept = not (addressee or ours or not_deciding)
        role = _as_written(match.group("role"))
        add("bracket", _titled(text, name, match.start("name"), rules), role, role, match.start(), match.end(), kept,
            {"ours": ours, "addr": addressee, "notdec": not_deciding, "about": about_deciding(match.start()),
             "rule": kept})
    for match in rules.titled.finditer(text.clean) if rules.titled_alone else ():
        name = _clean_name(match.group("name"), rules)
        if not name:
            continue
        addressee, about = name.split()[-1] in addressees, about_deciding(match.start())
        not_deciding = _not_deciding(text, name, match.start("name"), match.end("name"), rules)
        kept = not addressee and about and not not_deciding
        title = match.group("title")
        shown = f"{title} {name}" if len(name.split()) == 1 and _SHORT_TITLE.match(title) else name
        add("titled", shown, None, None, match.start(), match.end(), kept,
            {"addr": addressee, "notdec": not_deciding, "about": about, "rule": kept})
    found += _lone_names(text, rules, found, addressees, about_deciding, source)
    return found


# A long forwarded thread names many people; past these, no more names are offered (each costs a pass over the text).
_MOST_LONE_NAMES = 40


def _lone_names(text: Text, rules: PeopleRules, found: list[Candidate], addressees: set[str],
                about_deciding: Callable[[int], bool], source: str) -> list[Candidate]:
    """Every other name in the text, each once, with no role: "I need Giorgio's OK", "decide il cav. Barillà". The
    rules never keep one; a judge weighs it by its words around (grouped cross-validation on train b1–b65: the
    people labelled that some candidate reads went from 90.2% to 93.1% of notes, the judge's reading 76.9% → 77.4%)."""
    seen = {candidate.name.split()[-1].lower() for candidate in found if candidate.name}
    lone: list[Candidate] = []
    clean = text.clean
    for match in re.finditer(_NAME, clean):
        if len(lone) >= _MOST_LONE_NAMES:
            break
        if match.start() and (clean[match.start() - 1].isalpha() or clean[match.start() - 1] == "'") \
                or match.end() < len(clean) and _is_word(clean[match.end()]):
            continue  # part of a longer word: "Dvořák", "McKinsey", "LinkedIn"
        name = _without_role_words(_clean_name(match.group("name"), rules, text, match.start()), rules)
        if not name or name.split()[-1].lower() in seen:
            continue
        seen.add(name.split()[-1].lower())
        words = name.split()  # each a word of the match, or its start ("Rossi" of "Rossi's")
        start = clean.index(words[0], match.start(), match.end())
        end = clean.rindex(words[-1], start, match.end()) + len(words[-1])
        sentence_start = text.sentence_span(start)[0]
        flags = {"addr": words[-1] in addressees, "notdec": _not_deciding(text, name, start, end, rules),
                 "about": about_deciding(start), "sstart": not clean[sentence_start:start].strip(" \t\n-•*>"),
                 "titled": bool(rules.title_before.search(clean[max(0, start - 15):start])),
                 "ours": _is_ours(text, start, rules, source)}
        shown = _titled(text, name, start, rules)
        features = _features(text, "name", None, shown, start, end, flags, source)
        features[f"times={min(_whole_words(clean, words[-1]), 3)}"] = 1.0
        if clean[end:end + 2] == "'s":
            features["possessive"] = 1.0
        lone.append(Candidate(shown, None, None, start, end, False, features, len(found) + len(lone)))
    return lone


def _without_role_words(name: str | None, rules: PeopleRules) -> str | None:
    """A name without the role or title words the capitals joined to it ("Presidente Ferraris", "Dr Ferraris": the
    title a surname alone keeps is put back by `_titled`); None when only such words are left ("Presidente")."""
    words = (name or "").split()
    while len(words) > 1 and (_is_role_word(words[0], rules) or rules.title_before.search(" " + words[0])):
        words.pop(0)
    while len(words) > 1 and _is_role_word(words[-1], rules):
        words.pop()
    return None if not words or _is_role_word(words[0], rules) else " ".join(words)


def _is_role_word(word: str, rules: PeopleRules) -> bool:
    """A role of the lexicon, or a title it keeps as written, written alone ("Presidente", "Chairman")."""
    return bool(rules.roles.fullmatch(word.lower()) or rules.titles.fullmatch(word.lower()))


def _names_around(text: Text, role: _Role, name: str | None, rules: PeopleRules):
    """The other names in the role's sentence, near it: what the role may belong to when the rules' own choice is
    wrong or missing ("il direttore del terminal ingegner Olcese", "the owners, Pat and Linda Schaefer")."""
    sentence_start, sentence_end = text.sentence_span(role.start)
    low, high = max(sentence_start, role.start - _WINDOW), min(sentence_end, role.end + _WINDOW)
    seen = {name.split()[-1]} if name else set()
    for match in re.finditer(_NAME, text.clean[low:high]):
        start, end = low + match.start(), low + match.end()
        if start < role.end and end > role.start or start and text.clean[start - 1].isalpha():
            continue
        other = _clean_name(match.group("name"), rules, text, start)
        if not other or other.split()[-1] in seen:
            continue
        seen.add(other.split()[-1])
        between = text.clean[end:role.start] if end <= role.start else text.clean[role.end:start]
        words = FEATURE_WORD.findall(between.lower())
        near = {"side": "before" if end <= role.start else "after", "gap": min(len(words), 6),
                "comma": "," in between, "paren": "(" in between or ")" in between}
        for word in words[:4]:
            near[f"b:{word}"] = True
        yield other, start, end, near


def _features(text: Text, kind: str, role: str | None, name: str | None, start: int, end: int,
              flags: dict[str, object], source: str) -> dict[str, float]:
    """What a judge weighs of a candidate: how the rules found it and what they made of it (alone and with whether
    it is named), its role, the words of its sentence and the four words each side."""
    sentence_start, sentence_end = text.sentence_span(start)
    named = bool(name)
    row = {"relpos": start / max(1, len(text.clean))}
    for key, value in (("kind", kind), ("role", role or "-"), ("named", named), ("src", source),
                       ("lang", text.phrases.language)):
        row[f"{key}={value}"] = 1.0
    for key, value in flags.items():
        row[f"{key}={value}"] = row[f"{key}={value}&named={named}"] = 1.0
    for word in set(FEATURE_WORD.findall(text.clean[sentence_start:sentence_end].lower())):
        row[f"s:{word}"] = 1.0
    if name:
        words = name.split()
        row[f"words={min(len(words), 3)}"] = 1.0
        if any(_SHORT_TITLE.match(word) for word in words[:-1]):
            row["title"] = 1.0
        lowered = words[-1].lower()
        if lowered != words[-1] and _whole_words(text.clean, lowered, apostrophe=True):
            row["also_lowercase"] = 1.0  # "All'inizio", "Ops": a word the text also writes in lowercase
        if "'" in words[0]:
            row["apostrophe"] = 1.0
        _add_name_words(row, words, text.phrases.language)
    _add_context_by_kind(row, kind, role, named, *add_words_around(row, text.clean, start, end))
    return row


def _add_name_words(row: dict[str, float], words: list[str], language: str) -> None:
    """The name's own words ("nw:jira", "nw:budget": what train's notes capitalise and never meant as someone, or
    did), and how many of them are common words of the language ("Customer Success", "Burns Night")."""
    words = [word for word in words if not _SHORT_TITLE.match(word)]
    common = common_words(language)
    for word in words:
        row[f"nw:{word.lower()}"] = 1.0
    row[f"cw={sum(word.lower() in common for word in words)}"] = 1.0


def _add_context_by_kind(row: dict[str, float], kind: str, role: str | None, named: bool, before: list[str],
                         after: list[str]) -> None:
    """The two words each side (`before` and `after`, nearest first) once more per kind of candidate ("name|R0:s"
    for a name's possessive, "role|R0:s" for a role's), and, for a role, the nearest word each side with whether it
    is named: the same word tells a name from a role differently. Grouped cross-validation on train (five folds by
    writer, 8,724 notes, judges refitted per fold, 2026-12-08, fifteenth session), with the name's words above:
    decision makers 77.71% -> 78.19% (111 notes mended, 69 broken; sign test p about 0.002); every word each side
    per kind 77.95%, the sentence's words per kind 77.61%, the name's last three letters 78.00%."""
    for side, words in (("L", before), ("R", after)):
        for n, word in enumerate(words[:2]):
            key = f"{side}{n}:{word}"
            row[f"{kind}|{key}"] = 1.0
            if role and n == 0:
                row[f"named={named}|{key}"] = 1.0


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _whole_words(text: str, word: str, apostrophe: bool = False) -> int:
    """How many times `word` (which starts and ends with a letter) stands in `text` as a whole word (as the regex
    \\bword\\b counts it; with `apostrophe`, not after one either: "All'inizio" holds no "inizio"). A regex per name
    cost more than the rest of the people's reading: each was compiled anew."""
    return sum(1 for _ in _whole_word_starts(text, word, apostrophe))


def _whole_word_starts(text: str, word: str, apostrophe: bool = False) -> Iterator[int]:
    """Where `word` stands in `text` as a whole word, as `_whole_words` counts it."""
    if not word:
        return
    at = text.find(word)
    while at >= 0:
        end = at + len(word)
        before = text[at - 1] if at else ""
        if not (before and (_is_word(before) or apostrophe and before == "'")) \
                and not (end < len(text) and _is_word(text[end])):
            yield at
            at = text.find(word, end)
        else:
            at = text.find(word, at + 1)


def _about_deciding(text: Text, rules: PeopleRules):
    """Whether the sentence holding a position is about deciding, each sentence searched once."""
    seen: dict[int, bool] = {}

    def about(pos: int) -> bool:
        start, end = text.sentence_span(pos)
        if start not in seen:
            seen[start] = bool(rules.context.search(text.clean[start:end]))
        return seen[start]
    return about


def _drop_covered_roles(people: list[DecisionMaker]) -> list[DecisionMaker]:
    """A role alone adds nothing when a named person already holds it."""
    named_roles = {person.role for person in people if person.name}
    return [person for person in people if person.name or person.role not in named_roles]


def named_from(people: list[DecisionMaker], others: list[DecisionMaker]) -> list[DecisionMaker]:
    """The rep's unnamed roles given the name the customer's forwarded words put to the same role ("the MD is
    travelling" / "Our MD, Mr. Shankar Hiremath, is travelling"), or the fuller name they give a body ("la giunta"
    / "la Giunta comunale")."""
    named = {person.role: person for person in others if person.name and person.role}
    fuller = {person.role: person for person in others if not person.name and person.role}

    def completed(person: DecisionMaker) -> DecisionMaker:
        if person.name is not None:
            return person
        other = fuller.get(person.role)
        if other is not None and _words(other.written) > _words(person.written):
            person = other
        return named.get(person.role, person)
    return [completed(person) for person in people]


def _describe(person: DecisionMaker) -> str:
    """"Maria Rossi (cfo)", "Giorgio" or "board"."""
    if person.name:
        return f"{person.name} ({person.role})" if person.role else person.name
    return str(person.role)


def parse_person(item: str) -> DecisionMaker | None:
    """One entry of a "Decision makers:" line: "Maria Rossi (CFO)", "the board", "dott. Marco Ferri, CFO"."""
    for phrases in all_phrases():
        rules = rules_for(phrases.language)
        text = Text(item, item, phrases, [0])
        roles = _find_roles(text, rules)
        if roles:
            name = _name_near(text, roles[0], rules)[0]
            return DecisionMaker(name or _leftover_name(item, roles[0], rules), roles[0].key)
    name = _leftover_name(item, None, rules_for("en"))
    return DecisionMaker(name, None) if name else None


def _leftover_name(item: str, role: _Role | None, rules: PeopleRules) -> str | None:
    """The capitalised words of an entry once its role is taken out."""
    rest = item if role is None else item[:role.start] + " " + item[role.end:]
    match = re.search(_NAME, rest)
    return _clean_name(match.group("name"), rules) if match else None
