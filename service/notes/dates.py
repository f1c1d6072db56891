"""The recontact date: time phrases found by our own rules, resolved against the email's day in the rep's zone.

Months, seasons, quarters, fiscal years, holidays and spans ("in 3 months", "tra sei mesi") are resolved here;
dateparser only sees short spans our rules already took for dates (numeric dates, weekdays), never free text.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache, lru_cache

from dateutil.relativedelta import relativedelta

from service.notes.model import Evidence
from service.notes.phrases import Phrases, all_phrases, compile_phrase
from service.notes.text import Text

_PREP_WINDOW = 45
_CUE_BEFORE = 60
_CUE_AFTER = 35
_MIN_SCORE = 1.0
_BASE_SCORE = {"explicit": 1.2, "iso": 1.2, "numeric": 0.9, "month": 1.2, "season": 1.0, "quarter": 1.0,
               "next_quarter": 1.0, "half": 0.6, "year_next": 1.0, "year_end": 0.8, "month_end": 1.0, "year_number": 1.0,
               "holidays": 1.0, "summer_break": 1.0, "next_month": 0.8, "next_week": 0.2, "relative": 1.0,
               "fiscal": 1.8, "weekday": 0.0}
# "by Thursday", "from next week", "entro fine mese" are errands (a quote to send, a document to return), not
# recontacts, unless a recontact verb stands before them.
_NEEDS_CUE = frozenset({"weekday", "next_week", "month_end"})


@dataclass
class DateHit:
    """A time phrase in the text and the day it stands for."""

    start: int
    end: int
    day: date
    form: str
    score: float = 0.0
    modified: bool = False  # "early", "metà", "end of": as telling as a preposition


@dataclass(frozen=True)
class DateRules:
    """One language's compiled date rules."""

    months: dict[str, int]
    ambiguous: frozenset[str]
    numbers: dict[str, float]
    units: dict[str, str]
    ordinals: dict[str, int]
    seasons: dict[str, int]
    forms: dict[str, re.Pattern]
    triggers: dict[str, re.Pattern]
    prep: re.Pattern
    relative_prep: re.Pattern
    relative_past_before: re.Pattern
    relative_past_after: re.Pattern
    relative_not_after: re.Pattern
    recontact_cue: re.Pattern
    decision_cue: re.Pattern
    past_cue: re.Pattern
    no_date: re.Pattern
    document_date: re.Pattern


def _alternation(words) -> str:
    """A regex alternation of `words`, longest first, spaces matching any run of blanks."""
    ordered = sorted(words, key=len, reverse=True)
    return "|".join(re.escape(word).replace(r"\ ", r"\s+") for word in ordered)


def _form_sources(vocab: dict) -> dict[str, str]:
    """The regex source of every date form, from the language's words."""
    month = rf"(?P<month>{_alternation(vocab['months'])})(?![\w'])\.?"
    mod = rf"(?:(?P<m_start>{vocab['start']})|(?P<m_mid>{vocab['mid']})|(?P<m_end>{vocab['end']}))"
    mod_join = r"[\s-]*(?:of\s+|di\s+|del\s+|della\s+|dell'\s*|d')?"
    article = rf"(?:(?:{vocab['article']})\s+|l')?"
    year = r"(?P<year>20\d\d)"
    nxt = rf"(?:(?P<next>{vocab['next']})\s+)?"
    ordinal = _alternation(vocab["ordinals"])
    day = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th|°|º)?"
    return {
        "explicit": rf"\b{day}(?:\s+of|\s+di)?\s+{month}(?:,?\s+{year})?",
        "explicit_md": rf"\b{month}\s+{day}\b(?![:.,]?\d|\s*%)(?:,?\s+{year})?",
        "iso": r"\b(?P<year>20\d\d)-(?P<mnum>[01]\d)-(?P<dnum>[0-3]\d)\b",
        "numeric": r"(?<![\d/.,€$£#-])\b(?P<a>[0-3]?\d)[/.](?P<b>[01]?\d)(?:[/.](?P<y>(?:20)?\d\d))?\b(?![/.,]?\d|%)",
        "month": rf"(?:{mod}{mod_join}{article})?{nxt}\b{month}(?:\s+(?P<next2>{vocab['next']}))?(?:\s+{year})?",
        "season": rf"(?:{mod}{mod_join}{article})?(?:(?P<next>{vocab['next']}|{vocab['this']})\s+)?{article}\b(?P<season>{_alternation(vocab['seasons'])})\b"
                  rf"(?:\s+(?P<next2>{vocab['next']}))?(?:\s+{year})?",
        "quarter": rf"(?:{mod}{mod_join}{article})?(?:\bQ(?P<q>[1-4])\b|\b(?P<qord>{ordinal})\s+(?:{vocab['quarter']})\b"
                   rf"|\b(?:{vocab['quarter']})\s+(?P<qord2>{ordinal})\b)(?:\s+(?:of\s+|del\s+)?{year})?",
        "next_quarter": rf"(?:{mod}{mod_join})?\b(?:{vocab['next_quarter']})\b",
        "half": rf"\b{vocab['half']}(?P<hnext>\s+(?:of\s+)?(?:the\s+)?(?:(?:next|following)\s+year|(?:del(?:l')?\s*)?(?:prossimo\s+anno|anno\s+prossimo)))?",
        "year_next": rf"(?:{mod}{mod_join})?\b(?:{vocab['year_next']})\b",
        "year_end": rf"\b(?:{vocab['year_end']})\b",
        "month_end": rf"\b(?:{vocab['month_end']})\b",
        "year_number": rf"(?:{mod}{mod_join})?(?<![\d/.-]){year}\b(?![/.-]\d)",
        "holidays": rf"\b(?:{vocab['holidays']})\b",
        "summer_break": rf"\b(?:{vocab['summer_break']})\b",
        "next_month": rf"\b(?:{vocab['next_month']})\b",
        "next_week": rf"\b(?:{vocab['next_week']})\b",
        "relative": rf"(?<![\w.,'])(?P<num>\d{{1,3}}|{_alternation(vocab['numbers'])})[\s-]*(?P<unit>{_alternation(vocab['units'])})\b",
        "fiscal": rf"(?:{vocab['fiscal']})[^.;\n]{{0,40}}?\b(?:(?P<fstart>{vocab['fiscal_start']})|(?P<fend>{vocab['fiscal_end']}))\b[^.;\n\d]{{0,20}}?{month}",
        "weekday": rf"\b(?:{vocab['weekday_spans']})\b",
    }


def _build_triggers(vocab: dict) -> dict[str, re.Pattern]:
    """Cheap words a form cannot match without: a note with no month name skips the month forms."""
    month = compile_phrase(rf"\b(?:{_alternation(vocab['months'])})(?![\w'])")
    return {"explicit": month, "explicit_md": month, "month": month, "fiscal": month,
            "season": compile_phrase(rf"\b(?:{_alternation(vocab['seasons'])})\b"),
            "relative": compile_phrase(rf"\b(?:{_alternation(vocab['units'])})\b"),
            "quarter": compile_phrase(rf"\bq[1-4]\b|\b(?:{vocab['quarter']})\b"),
            "next_quarter": compile_phrase(rf"\b(?:{vocab['quarter']})\b"),
            "iso": re.compile(r"\d"), "numeric": re.compile(r"\d[/.]\d"), "year_number": re.compile(r"\b20\d\d\b")}


def _build_rules(phrases: Phrases) -> DateRules:
    """Compile the date rules of one language."""
    vocab = phrases.table["dates"]
    cues = vocab["cues"]
    prep = rf"(?:^|[^\w'])(?:(?P<after>{vocab['after']})|(?P<until>{vocab['until']})|(?P<near>{vocab['near']}))\s*(?:(?:{vocab['article']})\s+|l')?$"
    return DateRules(
        months={name.lower(): number for name, number in vocab["months"].items()},
        ambiguous=frozenset(vocab["ambiguous_months"]),
        numbers={name.lower(): float(number) for name, number in vocab["numbers"].items()},
        units=dict(vocab["units"]),
        ordinals={name.lower(): number for name, number in vocab["ordinals"].items()},
        seasons={name.lower(): number for name, number in vocab["seasons"].items()},
        forms={name: compile_phrase(source) for name, source in _form_sources(vocab).items()},
        triggers=_build_triggers(vocab),
        prep=compile_phrase(prep),
        relative_prep=compile_phrase(vocab["relative_prep"]),
        relative_past_before=compile_phrase(vocab["relative_past_before"]),
        relative_past_after=compile_phrase(vocab["relative_past_after"]),
        relative_not_after=compile_phrase(vocab["relative_not_after"]),
        recontact_cue=compile_phrase(cues["recontact"]),
        decision_cue=compile_phrase(cues["decision"]),
        past_cue=compile_phrase(cues["past"]),
        no_date=compile_phrase(cues["no_date"]),
        document_date=compile_phrase(cues["document_date"]),
    )


@cache
def rules_for(language: str) -> DateRules:
    """The compiled date rules of a language."""
    return _build_rules(next(p for p in all_phrases() if p.language == language))


for _phrases in all_phrases():  # compile at import, once per language
    rules_for(_phrases.language)


# ---- calendar arithmetic -------------------------------------------------------------------------------------

def _last_day(year: int, month: int) -> date:
    """The last day of a month."""
    return date(year, month, calendar.monthrange(year, month)[1])


def _month_day(year: int, month: int, part: str) -> date:
    """The 1st, 15th or last day of a month."""
    if part == "end":
        return _last_day(year, month)
    return date(year, month, 15 if part == "mid" else 1)


def _shift_month(year: int, month: int, months: int) -> tuple[int, int]:
    """(year, month) moved by `months`."""
    index = year * 12 + month - 1 + months
    return index // 12, index % 12 + 1


def _next_occurrence(today: date, make, year: int | None = None) -> date | None:
    """The first day made by `make(year)` that is after today (or in the given year)."""
    if year is not None:
        day = make(year)
        return day if day > today else None
    day = make(today.year)
    return day if day > today else make(today.year + 1)


def _safe_date(year: int, month: int, day: int) -> date | None:
    """A date, or None for "31 February"."""
    try:
        return date(year, month, day)
    except ValueError:
        return None


# ---- the forms -----------------------------------------------------------------------------------------------

@dataclass
class _Context:
    """What stands before a time phrase: its preposition ("until", "dopo", "in") and the text."""

    text: Text
    rules: DateRules
    today: date
    day_first: bool
    language: str
    preps: dict[int, str | None] = field(default_factory=dict)  # _prep_of by offset: resolving and scoring both ask


def _prep_of(ctx: _Context, start: int) -> str | None:
    """"after", "until" or "near" for the preposition right before `start`."""
    if start in ctx.preps:
        return ctx.preps[start]
    match = ctx.rules.prep.search(ctx.text.clean[max(0, start - _PREP_WINDOW):start])
    kind = next(kind for kind in ("after", "until", "near") if match.group(kind) is not None) if match else None
    ctx.preps[start] = kind
    return kind


def _modifier(match) -> str | None:
    """"start", "mid" or "end" when the phrase has a modifier ("early", "metà", "end of")."""
    for part in ("start", "mid", "end"):
        if match.groupdict().get(f"m_{part}"):
            return part
    return None


def _year_of(match) -> int | None:
    """The explicit year of a phrase, if any."""
    year = match.groupdict().get("year")
    return int(year) if year else None


def _resolve_explicit(ctx: _Context, match) -> date | None:
    """"2 February", "15 gennaio 2027", "May 5": that day, the year rolled forward when left out."""
    month = ctx.rules.months[match.group("month").lower().rstrip(".")]
    day = int(match.group("day"))
    if not 1 <= day <= 31:
        return None
    year = _year_of(match)
    if year:
        return _safe_date(year, month, day)
    return _next_occurrence(ctx.today, lambda y: _safe_date(y, month, day) or _last_day(y, month))


def _resolve_iso(ctx: _Context, match) -> date | None:
    """"2027-03-01"."""
    return _safe_date(int(match.group("year")), int(match.group("mnum")), int(match.group("dnum")))


def _resolve_numeric(ctx: _Context, match) -> date | None:
    """"12/03", "3.12.2026": only after a preposition or with a year, read by dateparser in the rep's order."""
    if not match.group("y") and not _prep_of(ctx, match.start()):
        return None
    return _parse_span(match.group(), ctx.language, ctx.today, "DMY" if ctx.day_first else "MDY")


def _resolve_month(ctx: _Context, match) -> date | None:
    """"in March", "until April", "a settembre", "mid-March", "end of January", "after March"."""
    name = match.group("month").lower().rstrip(".")
    prep, part = _prep_of(ctx, match.start()), _modifier(match)
    if not (prep or part or match.group("year") or match.group("next") or match.group("next2")):
        if name in ctx.rules.ambiguous or not _is_capitalised_or_long(match.group("month")):
            return None
    month = ctx.rules.months[name]
    if prep == "after" and part != "start":
        return _next_occurrence(ctx.today, lambda y: date(*_shift_month(y, month, 1), 1), _year_of(match))
    return _next_occurrence(ctx.today, lambda y: _month_day(y, month, part or "start"), _year_of(match))


def _is_capitalised_or_long(word: str) -> bool:
    """A bare month name counts when it looks like one ("March", "settembre"), not like a verb ("march")."""
    return word[:1].isupper() or len(word) > 5


def _period_start(ctx: _Context, match, first_month: int, length: int) -> date | None:
    """The start of a season/quarter/half, or of the next one after "after"/"end of"."""
    prep, part = _prep_of(ctx, match.start()), _modifier(match)
    if prep == "after" or part == "end":
        first_month += length
    elif part == "mid":
        first_month += length // 2
    year, month = _shift_month(0, first_month, 0) if first_month <= 12 else (1, first_month - 12)
    return _next_occurrence(ctx.today, lambda y: date(y + year, month, 1), _year_of(match))


def _resolve_season(ctx: _Context, match) -> date | None:
    """"next spring" → 1 Mar, "after the summer" → 1 Sep, "in autunno" → 1 Sep."""
    if not (_prep_of(ctx, match.start()) or _modifier(match) or match.group("next") or match.group("next2")):
        return None
    return _period_start(ctx, match, ctx.rules.seasons[match.group("season").lower()], 3)


def _quarter_number(ctx: _Context, match) -> int:
    """The quarter a phrase names ("Q3", "third quarter", "terzo trimestre")."""
    if match.group("q"):
        return int(match.group("q"))
    return ctx.rules.ordinals[(match.group("qord") or match.group("qord2")).lower()]


def _resolve_quarter(ctx: _Context, match) -> date | None:
    """"Q3" → 1 Jul; "after Q3" / "end of Q3" → 1 Oct; a bare "Q3 release" is no time to call."""
    cued = ctx.rules.recontact_cue.search(ctx.text.clean[max(0, match.start() - 25):match.start()])
    if not (_prep_of(ctx, match.start()) or _modifier(match) or _year_of(match) or cued):
        return None
    return _period_start(ctx, match, _quarter_number(ctx, match) * 3 - 2, 3)


def _resolve_next_quarter(ctx: _Context, match) -> date | None:
    """"next quarter" → the first day of the next quarter."""
    first = (ctx.today.month - 1) // 3 * 3 + 1
    return date(*_shift_month(ctx.today.year, first, 3), 1)


def _resolve_half(ctx: _Context, match) -> date | None:
    """"H2", "second half of the year", "secondo semestre" → 1 Jul; "H1 next year" → 1 Jan next year."""
    number = match.group("hnum") or ("1" if match.group("hord").lower() in {"first", "1st", "primo"} else "2")
    month = 1 if number == "1" else 7
    if match.group("hnext"):
        return date(ctx.today.year + 1, month, 1)
    if not _prep_of(ctx, match.start()):
        return None
    return _period_start(ctx, match, month, 6)


def _resolve_year_next(ctx: _Context, match) -> date | None:
    """"next year" → 1 Jan; "mid next year" → 1 Jul; "end of next year" → 31 Dec."""
    part = _modifier(match)
    year = ctx.today.year + 1
    return {"mid": date(year, 7, 1), "end": date(year, 12, 31)}.get(part, date(year, 1, 1))


def _resolve_year_end(ctx: _Context, match) -> date | None:
    """"end of the year" → 31 Dec; "after year end" → 1 Jan."""
    if _prep_of(ctx, match.start()) == "after":
        return date(ctx.today.year + 1, 1, 1)
    return _next_occurrence(ctx.today, lambda y: date(y, 12, 31))


def _resolve_month_end(ctx: _Context, match) -> date | None:
    """"at the end of the month", "a fine mese" → the last day of this month (of the next, on its last day)."""
    day = _last_day(ctx.today.year, ctx.today.month)
    return day if day > ctx.today else _last_day(*_shift_month(ctx.today.year, ctx.today.month, 1))


def _resolve_year_number(ctx: _Context, match) -> date | None:
    """"in 2027" → 1 Jan 2027, only after a preposition and when it is a future year."""
    year, part = int(match.group("year")), _modifier(match)
    if year <= ctx.today.year or not (part or _prep_of(ctx, match.start())):
        return None
    return {"mid": date(year, 7, 1), "end": date(year, 12, 31)}.get(part, date(year, 1, 1))


def _resolve_holidays(ctx: _Context, match) -> date | None:
    """"after Christmas", "dopo le feste" → 7 Jan."""
    if _prep_of(ctx, match.start()) != "after":
        return None
    return _next_occurrence(ctx.today, lambda y: date(y, 1, 7))


def _resolve_summer_break(ctx: _Context, match) -> date | None:
    """"after the summer holidays", "dopo le ferie" → 1 Sep."""
    if _prep_of(ctx, match.start()) != "after":
        return None
    return _next_occurrence(ctx.today, lambda y: date(y, 9, 1))


def _resolve_next_month(ctx: _Context, match) -> date | None:
    """"next month" → the 1st of next month."""
    return date(*_shift_month(ctx.today.year, ctx.today.month, 1), 1)


def _resolve_next_week(ctx: _Context, match) -> date | None:
    """"next week" → a week from today."""
    return ctx.today + timedelta(days=7)


def _resolve_relative(ctx: _Context, match) -> date | None:
    """"in 3 months", "tra sei mesi", "90 days": counted from today; not "3 months ago" nor "a 2-year contract"."""
    head = ctx.text.clean[max(0, match.start() - 30):match.start()]
    tail = ctx.text.clean[match.end():match.end() + 25]
    amount_text = match.group("num").lower()
    if ctx.rules.relative_past_before.search(head) or ctx.rules.relative_past_after.search(tail):
        return None
    if ctx.rules.relative_not_after.search(tail):
        return None
    if not amount_text.isdigit() and not ctx.rules.relative_prep.search(head):
        return None
    amount = float(amount_text) if amount_text.isdigit() else ctx.rules.numbers[re.sub(r"\s+", " ", amount_text)]
    return _add_span(ctx.today, amount, ctx.rules.units[match.group("unit").lower()])


def _add_span(today: date, amount: float, unit: str) -> date | None:
    """today + amount units; half years become months."""
    if amount <= 0 or amount > 1000:
        return None
    if unit == "years":
        return today + relativedelta(months=round(amount * 12))
    if unit == "months":
        return today + relativedelta(months=round(amount))
    return today + timedelta(days=round(amount * (7 if unit == "weeks" else 1)))


def _resolve_fiscal(ctx: _Context, match) -> date | None:
    """"their fiscal year starts in April" → 1 Apr; "… ends in June" → 1 Jul."""
    month = ctx.rules.months[match.group("month").lower().rstrip(".")]
    if match.group("fend"):
        month = month % 12 + 1
    return _next_occurrence(ctx.today, lambda y: date(y, month, 1))


def _resolve_weekday(ctx: _Context, match) -> date | None:
    """"next Tuesday", "domani": dateparser reads the short span."""
    return _parse_span(match.group(), ctx.language, ctx.today, "DMY" if ctx.day_first else "MDY")


_RESOLVERS = {
    "explicit": _resolve_explicit, "explicit_md": _resolve_explicit, "iso": _resolve_iso, "numeric": _resolve_numeric,
    "month": _resolve_month, "season": _resolve_season, "quarter": _resolve_quarter,
    "next_quarter": _resolve_next_quarter, "half": _resolve_half, "year_next": _resolve_year_next,
    "year_end": _resolve_year_end, "month_end": _resolve_month_end, "year_number": _resolve_year_number, "holidays": _resolve_holidays,
    "summer_break": _resolve_summer_break, "next_month": _resolve_next_month, "next_week": _resolve_next_week,
    "relative": _resolve_relative, "fiscal": _resolve_fiscal, "weekday": _resolve_weekday,
}


@lru_cache(maxsize=4096)
def _parse_span(span: str, language: str, today: date, order: str) -> date | None:
    """dateparser on one short span our rules found, relative to today, preferring the future."""
    import dateparser  # imported on first use: most notes never need it

    settings = {"RELATIVE_BASE": datetime(today.year, today.month, today.day, 12), "PREFER_DATES_FROM": "future",
                "DATE_ORDER": order, "RETURN_AS_TIMEZONE_AWARE": False}
    parsed = dateparser.parse(span, languages=[language], settings=settings)
    return parsed.date() if parsed else None


# ---- choosing the recontact date ----------------------------------------------------------------------------

def _find_hits(ctx: _Context) -> list[DateHit]:
    """Every time phrase in the text with the day it stands for."""
    hits = []
    triggered: dict[int, bool] = {}  # four month forms share one trigger: search the text for it once
    for form, pattern in ctx.rules.forms.items():
        trigger = ctx.rules.triggers.get(form)
        if trigger is not None:
            if id(trigger) not in triggered:
                triggered[id(trigger)] = bool(trigger.search(ctx.text.clean))
            if not triggered[id(trigger)]:
                continue
        for match in pattern.finditer(ctx.text.clean):
            if form == "weekday" and not ctx.rules.recontact_cue.search(ctx.text.sentence(match.start())):
                continue  # dateparser is slow: only a weekday a recontact verb points at is worth reading
            day = _RESOLVERS[form](ctx, match)
            if day and day > ctx.today:
                hits.append(DateHit(match.start(), match.end(), day, form.removesuffix("_md"), modified=bool(_modifier(match))))
    return _drop_overlaps(hits)


def _drop_overlaps(hits: list[DateHit]) -> list[DateHit]:
    """Keep the longest phrase where phrases overlap ("end of March 2027" over "March 2027"); fiscal wins."""
    ranked = sorted(hits, key=lambda hit: (hit.form != "fiscal", -(hit.end - hit.start), hit.start))
    kept: list[DateHit] = []
    for hit in ranked:
        if all(hit.end <= other.start or hit.start >= other.end for other in kept):
            kept.append(hit)
    return sorted(kept, key=lambda hit: hit.start)


def _score(ctx: _Context, hit: DateHit) -> float:
    """How likely the phrase is the recontact date: recontact verbs near it, "until/after", decisions."""
    clean = ctx.text.clean
    sentence_start, sentence_end = ctx.text.sentence_span(hit.start)
    before = clean[max(sentence_start, hit.start - _CUE_BEFORE):hit.start]
    after = clean[hit.end:min(sentence_end, hit.end + _CUE_AFTER)]
    score = _BASE_SCORE[hit.form]
    if hit.form not in _NEEDS_CUE:
        score += {"after": 1.0, "until": 1.0, "near": 0.3, None: 0.3 if hit.modified else 0.0}[_prep_of(ctx, hit.start)]
    if ctx.rules.recontact_cue.search(before):
        score += 2.0
    elif ctx.rules.recontact_cue.search(after) and hit.form not in _NEEDS_CUE:
        score += 1.2
    elif hit.form in _NEEDS_CUE:
        return 0.0
    if hit.form in {"explicit", "numeric"} and ctx.rules.document_date.search(before):
        score -= 2.0
    if ctx.rules.decision_cue.search(clean[sentence_start:sentence_end]):
        score += 0.7
    if ctx.rules.past_cue.search(clean[max(sentence_start, hit.start - 25):min(sentence_end, hit.end + 10)]):
        score -= 2.0
    return score


def find_recontact(text: Text, today: date, day_first: bool = True, source: str = "note") -> tuple[date | None, Evidence | None, bool]:
    """The recontact date of the text, the phrase it came from, and whether the text says there is none."""
    rules = rules_for(text.phrases.language)
    ctx = _Context(text, rules, today, day_first, text.phrases.language)
    hits = _find_hits(ctx)
    for hit in hits:
        hit.score = _score(ctx, hit)
    hits = [hit for hit in hits if hit.score >= _MIN_SCORE]
    if not hits:
        return None, None, bool(rules.no_date.search(text.clean))
    best = max(hits, key=lambda hit: (hit.score, hit.start))
    end = best.end - len(text.original[best.start:best.end]) + len(text.original[best.start:best.end].rstrip(". "))
    phrase = text.original[best.start:end]
    return best.day, Evidence("recontact_on", phrase, best.start, end, best.day.isoformat(), source), False


def resolve_phrase(phrase: str, phrases: Phrases, today: date, day_first: bool = True) -> date | None:
    """The day a short phrase stands for ("in 3 months", "marzo", "2027-03-01"), e.g. a structured line's value."""
    from service.notes.text import make_text

    day, _, _ = find_recontact(make_text(phrase, phrases), today, day_first)
    if day:
        return day
    rules = rules_for(phrases.language)
    ctx = _Context(make_text(phrase, phrases), rules, today, day_first, phrases.language)
    hits = [hit for hit in _find_hits(ctx) if hit.form not in {"weekday"}]
    return hits[0].day if hits else None
