"""The recontact date: time phrases found by our own rules, resolved against the email's day in the rep's zone.

Months, seasons, quarters (fiscal ones too), feasts with computed dates (Easter, Thanksgiving, Ferragosto, the
harvest), weekdays, "the first Thursday of next month" and spans ("in 3 months", "tra sei mesi") are resolved here,
as are spans counted from another date ("a couple of months before the renewal", "il giorno dopo la seduta");
dateparser only sees short spans our rules already took for dates (numeric dates), never free text.

Which phrase is the recontact date: without a model, the best the rules' scores rank above their floor; with one,
a learned chooser's pick among the same phrases (`Candidates`, `hit_features`; service/notes/learned.py `judges`).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
from itertools import pairwise
from typing import NamedTuple

from dateutil.easter import easter
from dateutil.relativedelta import relativedelta

from service.notes.model import Evidence
from service.notes.phrases import Phrases, all_phrases, compile_phrase
from service.notes.text import Text, add_words_around

_PREP_WINDOW = 45
_CUE_BEFORE = 60
_CUE_AFTER = 35
_MIN_SCORE = 1.0
_BASE_SCORE = {"explicit": 1.2, "iso": 1.2, "numeric": 0.9, "month": 1.2, "season": 1.0, "quarter": 1.0,
               "next_quarter": 1.0, "half": 0.6, "year_next": 1.0, "year_end": 0.8, "month_end": 1.0, "year_number": 1.0,
               "holidays": 1.0, "feast": 1.2, "summer_break": 1.0, "next_month": 0.8, "next_week": 0.2, "relative": 1.0,
               "fiscal": 1.8, "weekday": 0.0, "nth_weekday": 1.2, "day_of_month": 1.2, "anchored": 1.5, "term": 2.3}
_PREP_SCORE = {"after": 1.0, "until": 1.0, "before": 0.3, "near": 0.3}
_PINNED = 1.0  # "Wednesday, April 8": a weekday with its date is an appointment, as telling as a preposition
_STRONG_CUE, _WEAK_CUE = 2.0, 1.2  # "I'll call" before a date, or only "the demo", "they meet"
_NO_DATE_FLOOR = 3.0  # where the note says not to call back, only a date with a recontact verb still counts
_BEFORE_DAYS = 14  # "before Easter": about two weeks before it
_ANCHOR_WINDOW = 90  # "a couple of months before [the expiry of your new annual contract, due in April]"
_PAST = 2.0  # "she left in November": a story, not a plan
_RECENT_PAST = 1.5  # "settembre" written in November: more likely the September just gone than the next one
_RECENT_DAYS = 90
_THEN_WINDOW = 250  # "… meets on 3 December. I'll follow up with you then."
_PAIR_GAP = 30
_FAR_SPAN = 540  # "tra qualche anno", "in a couple of years": so far off it is a recontact only where a verb asks for it
_REFINE_DAYS, _REFINE_SCORE = 21, 1.0  # "after the new year - I'll reach out mid-January": near dates, the precise one  # "after the holidays, in mid-January": one date said twice, the calendar one is the precise one
_PRECISION = {"explicit": 4, "iso": 4, "numeric": 4, "nth_weekday": 4, "day_of_month": 4, "weekday": 3, "anchored": 3,
              "month": 2, "fiscal": 2, "year_number": 0, "year_next": 0, "year_end": 0, "term": 0}
# "before X" moves these back two weeks; a span ("3 months") or a weekday already names its own day.
_SHIFTED_BEFORE = frozenset({"explicit", "month", "season", "quarter", "next_quarter", "half", "year_next",
                             "year_end", "year_number", "holidays", "feast", "summer_break", "nth_weekday"})
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
    pinned: bool = False  # "Wednesday, April 8"
    named: date | None = None  # the day named, before "before X" moved it back: what a span counts from
    recent_past: bool = False  # a month or day without a year whose last occurrence was only weeks ago
    tied: bool = False  # a recontact verb ("call them back", "ricontattare") names this date: the rep's explicit word


@dataclass
class _Span:
    """A span counted from another date ("a couple of months before your renewal", "il giorno successivo")."""

    start: int
    end: int
    days: int
    months: int
    before: bool
    that: bool  # "before that", "il giorno dopo": the date is the one named earlier
    kind: str = "span"  # "span", "day" (the day after) or "week" (the week after)


@dataclass(frozen=True)
class DateRules:
    """One language's compiled date rules."""

    months: dict[str, int]
    ambiguous: frozenset[str]
    numbers: dict[str, float]
    units: dict[str, str]
    ordinals: dict[str, int]
    seasons: dict[str, int]
    weekdays: dict[str, int]
    weekday_ordinals: dict[str, int]
    tomorrow: dict[str, int]
    feasts: dict[str, str]
    forms: dict[str, re.Pattern]
    triggers: dict[str, re.Pattern]
    prep: re.Pattern
    span_before: re.Pattern
    span_after: re.Pattern
    span_that: re.Pattern
    relative_prep: re.Pattern
    relative_duration: re.Pattern
    relative_defer: re.Pattern
    relative_past_before: re.Pattern
    relative_past_after: re.Pattern
    relative_not_after: re.Pattern
    recontact_cue: re.Pattern
    weak_cue: re.Pattern
    then_cue: re.Pattern
    past_before: re.Pattern
    past_after: re.Pattern
    expiry: re.Pattern
    term_years: dict[str, int]
    relative_term_before: re.Pattern
    from_now: re.Pattern
    strictly_after: re.Pattern
    event_after: re.Pattern
    apposition: re.Pattern
    decision_cue: re.Pattern
    past_cue: re.Pattern
    broken_promise: re.Pattern
    no_date: re.Pattern
    document_date: re.Pattern
    weekday_before_number: re.Pattern
    weekday_past: re.Pattern
    this_season: re.Pattern
    feast_region: dict[str, re.Pattern]


def _alternation(words) -> str:
    """A regex alternation of `words`, longest first, spaces matching any run of blanks."""
    ordered = sorted(words, key=len, reverse=True)
    return "|".join(re.escape(word).replace(r"\ ", r"\s+") for word in ordered)


def _form_sources(vocab: dict) -> dict[str, str]:
    """The regex source of every date form, from the language's words."""
    month = rf"(?P<month>{_alternation(vocab['months'])})(?![\w'])\.?"
    mod = (rf"(?:(?P<m_half2>{vocab['second_half']})|(?P<m_week2>{vocab['second_week']})|(?P<m_week1>{vocab['first_week']})"
           rf"|(?P<m_start>{vocab['start']})"
           rf"|(?P<m_mid>{vocab['mid']})|(?P<m_end>{vocab['end']}))")
    mod_join = r"[\s-]*(?:of\s+|in\s+|di\s+|del\s+|della\s+|dell'\s*|d')?"
    article = rf"(?:(?:{vocab['article']})\s+|l')?"
    year = r"(?P<year>20\d\d\b|'\d\d\b)"  # "Jan '27" as well as "January 2027"
    nxt = rf"(?:(?P<next>{vocab['next']})\s+)?"
    ordinal = _alternation(vocab["ordinals"])
    day = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th|°|º)?"
    weekday = rf"(?:\b(?P<wday>{_alternation(vocab['weekdays'])})\.?,?\s+(?:the\s+)?)?"  # "Wednesday, April 8"
    full_weekday = _alternation(name for name in vocab["weekdays"] if len(name) > 5)  # "sun", "wed" are words too
    forms = {
        "explicit": rf"{weekday}\b{day}(?:\s+of|\s+di)?\s+{month}(?:,?\s+{year})?",
        "explicit_md": rf"{weekday}\b{month}\s+{day}\b(?![:.,]?\d|\s*%)(?:,?\s+{year})?",
        "iso": r"\b(?P<year>20\d\d)-(?P<mnum>[01]\d)-(?P<dnum>[0-3]\d)\b",
        "numeric": r"(?<![\d/.,€$£#-])\b(?P<a>[0-3]?\d)(?:/[0-3]?\d|\.[01]?\d)(?:[/.](?P<y>(?:20)?\d\d))?\b(?![/.,]?\d|%)",
        "month": rf"(?:{mod}{mod_join}{article})?{nxt}\b{month}(?:\s+(?P<next2>{vocab['next']}))?(?:\s+(?:of\s+|del\s+)?{year})?",
        "season": rf"(?:{mod}{mod_join}{article})?(?:(?P<next>{vocab['next']}|{vocab['this']})\s+)?{article}\b(?P<season>{_alternation(vocab['seasons'])})\b"
                  rf"(?:\s+(?P<next2>{vocab['next']}))?(?:\s+(?:of\s+|del\s+)?{year})?",
        "quarter": rf"(?:{mod}{mod_join}{article})?(?:\bQ(?P<q>[1-4])\b|\b(?P<qord>{ordinal})\s+(?:{vocab['quarter']})\b"
                   rf"|\b(?:{vocab['quarter']})\s+(?P<qord2>{ordinal})\b)"
                   rf"(?:\s+(?:of\s+|del\s+)?(?:{year}|FY\s*'?(?P<fy>\d\d(?:\d\d)?)(?:\s*[-/]\s*(?P<fy2>\d\d(?:\d\d)?))?\b))?",
        "next_quarter": rf"(?:{mod}{mod_join})?\b(?:{vocab['next_quarter']})\b",
        "half": rf"\b{vocab['half']}(?P<hnext>\s+(?:of\s+)?(?:the\s+)?(?:(?:next|following)\s+year|(?:del(?:l')?\s*)?(?:prossimo\s+anno|anno\s+prossimo)))?",
        "year_next": rf"(?:{mod}{mod_join})?\b(?:{vocab['year_next']})\b",
        "year_end": rf"\b(?:{vocab['year_end']})\b",
        "month_end": rf"\b(?:{vocab['month_end']})\b",
        "year_number": rf"(?:{mod}{mod_join})?(?<![\d/.-])(?P<year>20\d\d)\b(?![/.-]\d)",
        "holidays": rf"\b(?:{vocab['holidays']})\b",
        "feast": rf"\b(?P<feast>{_alternation(vocab['feasts'])})(?![\w'])",
        "summer_break": rf"\b(?:{vocab['summer_break']})\b",
        "next_month": rf"\b(?:{vocab['next_month']})\b",
        "next_week": rf"\b(?:{vocab['next_week']})\b",
        "relative": rf"(?<![\w.,'])(?P<num>\d{{1,3}}|{_alternation(vocab['numbers'])})[\s-]*(?P<unit>{_alternation(vocab['units'])})\b",
        "fiscal": rf"(?:{vocab['fiscal']})[^.;\n]{{0,40}}?\b(?:(?P<fstart>{vocab['fiscal_start']})|(?P<fend>{vocab['fiscal_end']}))\b[^.;\n\d]{{0,20}}?{month}",
        "weekday": rf"(?:\b(?:(?P<wnext>{vocab['weekday_next']})|{vocab['weekday_before']})\s+)?\b(?P<wday>{full_weekday})\b"
                   rf"(?:\s+(?P<wnext2>{vocab['weekday_after']})\b)?"
                   rf"(?!,?\s+(?:the\s+)?\d)|\b(?P<tomorrow>{_alternation(vocab['tomorrow'])})\b",
        "nth_weekday": rf"\b(?P<nth>{_alternation(vocab['weekday_ordinals'])})\s+(?P<wday>{full_weekday})\s+(?:{vocab['month_of']})\s*"
                       rf"(?:(?P<nmonth>{vocab['next_month']})|(?P<tmonth>{vocab['this_month']})|(?:the\s+)?{month})",
        "day_of_month": rf"(?:\b(?P<wday>{_alternation(vocab['weekdays'])})\.?(?:\s+week)?,?\s+(?:the\s+)?(?P<day>[0-3]?\d)"
                        rf"(?:st|nd|rd|th)?\b|{vocab['day_only']})(?![\s,]*(?:of\s+|di\s+)?(?:{_alternation(vocab['months'])})\b|[:./]\d|\s*%)",
        "day_after": rf"\b(?:{vocab['day_after']})\b",
        "week_after": rf"\b(?:{vocab['week_after']})\b",
        "term": vocab["term"],
    }
    # "the new year" is a feast before it is next year: the longest phrase wins, and ties go to the earlier form
    return {"feast": forms.pop("feast"), **forms}


def _build_triggers(vocab: dict) -> dict[str, re.Pattern]:
    """Cheap words a form cannot match without: a note with no month name skips the month forms."""
    month = compile_phrase(rf"\b(?:{_alternation(vocab['months'])})(?![\w'])")
    return {"explicit": month, "explicit_md": month, "month": month, "fiscal": month,
            "season": compile_phrase(rf"\b(?:{_alternation(vocab['seasons'])})\b"),
            "relative": compile_phrase(rf"\b(?:{_alternation(vocab['units'])})\b"),
            "quarter": compile_phrase(rf"\bq[1-4]\b|\b(?:{vocab['quarter']})\b"),
            "next_quarter": compile_phrase(rf"\b(?:{vocab['quarter']})\b"),
            "iso": re.compile(r"\d"), "numeric": re.compile(r"\d[/.]\d"), "year_number": re.compile(r"\b20\d\d\b"),
            "feast": compile_phrase(rf"\b(?:{_alternation(vocab['feasts'])})(?![\w'])"),
            "nth_weekday": compile_phrase(rf"\b(?:{_alternation(vocab['weekdays'])})\b"), "day_of_month": re.compile(r"\d")}


def _build_rules(phrases: Phrases) -> DateRules:
    """Compile the date rules of one language."""
    vocab = phrases.table["dates"]
    cues = vocab["cues"]
    prep = (rf"(?:^|[^\w'])(?:(?P<after>{vocab['after']})|(?P<until>{vocab['until']})|(?P<before>{vocab['before']})"
            rf"|(?P<near>{vocab['near']}))\s*(?:(?:{vocab['article']})\s+|l')?$")
    return DateRules(
        months={name.lower(): number for name, number in vocab["months"].items()},
        ambiguous=frozenset(vocab["ambiguous_months"]),
        numbers={name.lower(): float(number) for name, number in vocab["numbers"].items()},
        units=dict(vocab["units"]),
        ordinals={name.lower(): number for name, number in vocab["ordinals"].items()},
        seasons={name.lower(): number for name, number in vocab["seasons"].items()},
        weekdays={name.lower(): number for name, number in vocab["weekdays"].items()},
        weekday_ordinals={name.lower(): number for name, number in vocab["weekday_ordinals"].items()},
        tomorrow={name.lower(): number for name, number in vocab["tomorrow"].items()},
        feasts={name.lower(): key for name, key in vocab["feasts"].items()},
        forms={name: compile_phrase(source) for name, source in _form_sources(vocab).items()},
        triggers=_build_triggers(vocab),
        prep=compile_phrase(prep),
        span_before=compile_phrase(vocab["span_before"]),
        span_after=compile_phrase(vocab["span_after"]),
        span_that=compile_phrase(vocab["span_that"]),
        relative_prep=compile_phrase(vocab["relative_prep"]),
        relative_duration=compile_phrase(vocab["relative_duration"]),
        relative_defer=compile_phrase(rf"(?:{vocab['relative_defer']})$"),
        relative_past_before=compile_phrase(vocab["relative_past_before"]),
        relative_past_after=compile_phrase(vocab["relative_past_after"]),
        relative_not_after=compile_phrase(vocab["relative_not_after"]),
        recontact_cue=compile_phrase(cues["recontact"]),
        weak_cue=compile_phrase(rf"(?:{cues['recontact_weak']})"),
        then_cue=compile_phrase(vocab["then_cue"]),
        past_before=compile_phrase(rf"(?:{cues['past_before']})"),
        past_after=compile_phrase(cues["past_after"]),
        expiry=compile_phrase(vocab["expiry"]),
        term_years={name.lower(): years for name, years in vocab["term_years"].items()},
        relative_term_before=compile_phrase(vocab["relative_term_before"]),
        from_now=compile_phrase(rf"\s+(?:{vocab['from_now']})\b"),
        apposition=compile_phrase(rf"\s*[,:;(-]\s*(?:(?:{vocab['apposition']})(?:\s+|(?<=')))*"),
        strictly_after=compile_phrase(rf"\b(?:{vocab['strictly_after']})\s+(?:(?:{vocab['article']})\s+|l')?$"),
        event_after=compile_phrase(rf"(?:{vocab['event_after']})$"),
        decision_cue=compile_phrase(cues["decision"]),
        past_cue=compile_phrase(cues["past"]),
        broken_promise=compile_phrase(cues["broken_promise"]),
        no_date=compile_phrase(cues["no_date"]),
        document_date=compile_phrase(cues["document_date"]),
        weekday_before_number=compile_phrase(rf"\b(?:{_alternation(vocab['weekdays'])})\.?,?\s+(?:the\s+|il\s+)?$"),
        weekday_past=compile_phrase(rf"(?:{cues['weekday_past']})$"),
        this_season=compile_phrase(rf"(?:{vocab['this_season']})"),
        feast_region={region: compile_phrase(rf"\b(?:{words})\s+$") for region, words in vocab.get("feast_region", {}).items()},
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


_PART_DAY = {"start": 1, "week2": 8, "mid": 15, "half2": 16}


def _month_day(year: int, month: int, part: str | None) -> date:
    """The day of a month a modifier names: 1st, 8th ("second week"), 15th, 16th ("second half") or the last."""
    if part is None:  # "in January": the month, from its 1st
        return date(year, month, 1)
    if part == "start" and month == 1:  # "early January": once the holidays are over (Epiphany)
        return _business_day_after(date(year, 1, 6))
    if part == "end":
        return _last_day(year, month)
    if part == "week1":
        return _first_working_week_day(year, month)
    if part == "week2":  # the week of the month's second Monday
        return _nth_weekday(year, month, 0, 2)
    return date(year, month, _PART_DAY[part])


_MONTH_FIRST_HOLIDAYS = frozenset({1, 5, 11})  # 1 January, 1 May, 1 November: "early May" starts on the day after


def _first_working_week_day(year: int, month: int) -> date:
    """"Early November", "ai primi di maggio", "the first week of March": the first working day of the month's first
    full working week (a month starting on a Friday, a weekend or a holiday starts on the Monday after)."""
    day = date(year, month, 1)
    if month in _MONTH_FIRST_HOLIDAYS:
        day += timedelta(days=1)
    while day.weekday() >= 4:  # Friday to Sunday: the week really starts on Monday
        day += timedelta(days=1)
    return day


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


def _nth_weekday(year: int, month: int, weekday: int, nth: int) -> date:
    """The nth given weekday of a month ("the first Thursday"); nth -1 is the last."""
    if nth < 0:
        last = _last_day(year, month)
        return last - timedelta(days=(last.weekday() - weekday) % 7)
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (min(nth, 5) - 1))


def _business_day_after(day: date) -> date:
    """The first weekday after `day`."""
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


# Lunar feasts have no rule dateutil knows: their days, by year (Chinese New Year's day; Eid al-Fitr, give or take a day).
_LUNAR = {"chinese_new_year": {2025: date(2025, 1, 29), 2026: date(2026, 2, 17), 2027: date(2027, 2, 6),
                               2028: date(2028, 1, 26), 2029: date(2029, 2, 13), 2030: date(2030, 2, 3)},
          "eid": {2025: date(2025, 3, 30), 2026: date(2026, 3, 20), 2027: date(2027, 3, 9), 2028: date(2028, 2, 26),
                  2029: date(2029, 2, 14), 2030: date(2030, 2, 4)}}


def _feast_span(key: str, year: int) -> tuple[date, date] | None:
    """The first and last day of a feast (or season of work) in a year: "after X" is the business day after the last."""
    if key in ("chinese_new_year", "eid", "ramadan"):
        day = _LUNAR["chinese_new_year" if key == "chinese_new_year" else "eid"].get(year)
        if day is None:
            return None
        if key == "chinese_new_year":  # the Spring Festival holiday: New Year's Eve and the week after
            return day - timedelta(days=1), day + timedelta(days=6)
        return (day - timedelta(days=30), day + timedelta(days=2)) if key == "ramadan" else (day, day + timedelta(days=2))
    sunday = easter(year)
    thanksgiving = _nth_weekday(year, 11, 3, 4)
    if key == "thanksgiving_ca":  # Canada's: the second Monday of October, a long weekend
        monday = _nth_weekday(year, 10, 0, 2)
        return monday - timedelta(days=2), monday
    fixed = {"christmas": (date(year, 12, 24), date(year + 1, 1, 6)),  # the holidays run to Epiphany
             "new_year": (date(year, 1, 1), date(year, 1, 6)), "epiphany": (date(year, 1, 6), date(year, 1, 6)),
             "ferragosto": (date(year, 8, 15), date(year, 8, 15)), "may_day": (date(year, 5, 1), date(year, 5, 1)),
             "independence_day": (date(year, 7, 4), date(year, 7, 4)), "all_saints": (date(year, 11, 1), date(year, 11, 1)),
             "harvest": (date(year, 9, 1), date(year, 9, 30)), "pruning": (date(year, 1, 15), _last_day(year, 2)),
             "easter": (sunday, sunday + timedelta(days=1)),  # Easter Monday is a holiday too (Pasquetta)
             "easter_monday": (sunday + timedelta(days=1), sunday + timedelta(days=1)),
             "good_friday": (sunday - timedelta(days=2), sunday - timedelta(days=2)),
             "thanksgiving": (thanksgiving, thanksgiving + timedelta(days=3)),  # the long weekend
             "labor_day": (_nth_weekday(year, 9, 0, 1),) * 2, "memorial_day": (_nth_weekday(year, 5, 0, -1),) * 2,
             "black_friday": (thanksgiving + timedelta(days=1),) * 2,
             "ascension": (sunday + timedelta(days=39),) * 2, "st_patrick": (date(year, 3, 17),) * 2,
             "st_brigid": (_st_brigid(year),) * 2, "liberation": (date(year, 4, 25),) * 2,
             "republic": (date(year, 6, 2),) * 2, "immaculate": (date(year, 12, 8),) * 2,
             "canada_day": (date(year, 7, 1),) * 2,
             "victoria_day": (date(year, 5, 24) - timedelta(days=date(year, 5, 24).weekday()),) * 2,  # Monday before 25 May
             "family_day": (_nth_weekday(year, 2, 0, 3),) * 2, "presidents_day": (_nth_weekday(year, 2, 0, 3),) * 2,
             "mlk_day": (_nth_weekday(year, 1, 0, 3),) * 2, "civic_holiday": (_nth_weekday(year, 8, 0, 1),) * 2,
             "columbus_day": (_nth_weekday(year, 10, 0, 2),) * 2}
    return fixed[key]


_CANADIAN_ZONES = frozenset({"America/Toronto", "America/Montreal", "America/Vancouver", "America/Edmonton",
                             "America/Winnipeg", "America/Halifax", "America/St_Johns", "America/Regina",
                             "America/Moncton", "America/Whitehorse", "America/Yellowknife", "America/Iqaluit",
                             "America/Glace_Bay", "America/Goose_Bay", "America/Dawson_Creek", "America/Swift_Current"})


def region_of(tz) -> str:
    """The rep's country where its feasts differ from the names' usual reading: "CA" (Thanksgiving on the second
    Monday of October, Labour Day in September), "US" (Labor Day in September), else ""."""
    name = str(tz)
    if name in _CANADIAN_ZONES or name.startswith("Canada/"):
        return "CA"
    return "US" if name.startswith(("America/", "US/")) else ""


def _regional_feast(key: str, word: str, region: str) -> str:
    """The feast a name means in the rep's country: Canada's Thanksgiving, North America's Labour Day."""
    if region == "CA" and key == "thanksgiving":
        return "thanksgiving_ca"
    if region and key == "may_day" and word.startswith("labo"):
        return "labor_day"
    return key


def _st_brigid(year: int) -> date:
    """Ireland's St Brigid's Day holiday: 1 February when it falls on a Friday, else the first Monday of February."""
    first = date(year, 2, 1)
    return first if first.weekday() == 4 else _nth_weekday(year, 2, 0, 1)


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
    source: str = "note"
    region: str = ""  # "CA", "US" or "" (elsewhere): whose Thanksgiving and Labour Day
    preps: dict[int, str | None] = field(default_factory=dict)  # _prep_of by offset: resolving and scoring both ask


def _prep_of(ctx: _Context, start: int) -> str | None:
    """"after", "until", "before" or "near" for the preposition right before `start`."""
    if start in ctx.preps:
        return ctx.preps[start]
    match = ctx.rules.prep.search(ctx.text.clean[max(0, start - _PREP_WINDOW):start])
    kind = next(kind for kind in ("after", "until", "before", "near") if match.group(kind) is not None) if match else None
    ctx.preps[start] = kind
    return kind


def _modifier(match) -> str | None:
    """"start", "week1", "week2", "mid", "half2" or "end" when the phrase has a modifier ("early", "metà", "end of")."""
    for part in ("start", "week1", "week2", "mid", "half2", "end"):
        if match.groupdict().get(f"m_{part}"):
            return part
    return None


def _year_of(match) -> int | None:
    """The explicit year of a phrase, if any."""
    year = match.groupdict().get("year")
    if not year:
        return None
    return 2000 + int(year[1:]) if year.startswith("'") else int(year)


def _resolve_explicit(ctx: _Context, match) -> date | None:
    """"2 February", "15 gennaio 2027", "May 5": that day, the year rolled forward when left out."""
    month = ctx.rules.months[match.group("month").lower().rstrip(".")]
    day = int(match.group("day"))
    if not 1 <= day <= 31:
        return None
    year = _year_of(match)
    if year:
        named = _safe_date(year, month, day)
    else:
        named = _next_occurrence(ctx.today, lambda y: _safe_date(y, month, day) or _last_day(y, month))
    if named and (ctx.rules.strictly_after.search(ctx.text.clean[max(0, match.start() - 15):match.start()])
                  or ctx.rules.event_after.search(ctx.text.clean[max(0, match.start() - _PREP_WINDOW):match.start()])):
        return _business_day_after(named)  # "dopo il 25 aprile", "subito dopo il Collegio del 15 dicembre": the working
        # day after it (but "from 1 May": the 1st)
    return named


def _resolve_iso(ctx: _Context, match) -> date | None:
    """"2027-03-01"."""
    return _safe_date(int(match.group("year")), int(match.group("mnum")), int(match.group("dnum")))


def _resolve_numeric(ctx: _Context, match) -> date | None:
    """"12/03", "3.12.2026": only after a preposition or with a year, read by dateparser in the rep's order."""
    if not match.group("y") and not _prep_of(ctx, match.start()) and not _numeric_cued(ctx, match.start()):
        return None
    first, second = (int(number) for number in re.split(r"[/.]", match.group())[:2])
    if (second if ctx.day_first else first) > 12:
        return None  # "2/23" where reps write the day first: no month of that number
    return _parse_span(match.group(), ctx.language, ctx.today, "DMY" if ctx.day_first else "MDY")


def _numeric_cued(ctx: _Context, start: int) -> bool:
    """"richiamare l'1/10", "Next call 5/28", "sync again Mon 2/23": a recontact verb or a weekday just before a bare
    numeric date makes it one (elsewhere "3/4" may be a ratio, a score or a version)."""
    head = ctx.text.clean[max(ctx.text.sentence_span(start)[0], start - 30):start]
    return bool(ctx.rules.recontact_cue.search(head) or ctx.rules.weekday_before_number.search(head))


def _resolve_month(ctx: _Context, match) -> date | None:
    """"in March", "until April", "a settembre", "mid-March", "end of January", "after March"."""
    name = match.group("month").lower().rstrip(".")
    prep, part = _prep_of(ctx, match.start()), _modifier(match)
    if not (prep or part or match.group("year") or match.group("next") or match.group("next2")):
        if (name in ctx.rules.ambiguous or not _is_capitalised_or_long(match.group("month"))) \
                and not _cued_right_before(ctx, match.start()):
            return None
    month = ctx.rules.months[name]
    if prep == "after" and part != "start":
        return _next_occurrence(ctx.today, lambda y: date(*_shift_month(y, month, 1), 1), _year_of(match))
    return _next_occurrence(ctx.today, lambda y: _month_day(y, month, part), _year_of(match))


def _cued_right_before(ctx: _Context, start: int) -> bool:
    """A recontact verb right before the phrase ("circle back Oct"): then even "Oct" or "may" is a month."""
    head = ctx.text.clean[max(0, start - 20):start]
    cues = list(ctx.rules.recontact_cue.finditer(head))
    return bool(cues) and not head[cues[-1].end():].strip(" ,:-")


def _is_capitalised_or_long(word: str) -> bool:
    """A bare month name counts when it looks like one ("March", "settembre"), not like a verb ("march")."""
    return word[:1].isupper() or len(word) > 5


def _period_start(ctx: _Context, match, first_month: int, length: int) -> date | None:
    """The start of a season/quarter/half, or of the next one after "after"/"end of"."""
    prep, part = _prep_of(ctx, match.start()), _modifier(match)
    if prep == "after" or part == "end":
        first_month += length
    elif part in ("mid", "half2"):
        first_month += length // 2
    year, month = _shift_month(0, first_month, 0) if first_month <= 12 else (1, first_month - 12)
    return _next_occurrence(ctx.today, lambda y: date(y + year, month, 1), _year_of(match))


def _resolve_season(ctx: _Context, match) -> date | None:
    """"next spring" → 1 Mar, "after the summer" → 1 Sep, "in autunno" → 1 Sep."""
    if not (_prep_of(ctx, match.start()) or _modifier(match) or match.group("next") or match.group("next2")
            or _year_of(match)):
        return None
    first_month = ctx.rules.seasons[match.group("season").lower()]
    if match.group("next") and ctx.rules.this_season.fullmatch(match.group("next")):
        year = ctx.today.year - (1 if first_month == 12 and ctx.today.month <= 2 else 0)  # January's winter began in December
        if date(year, first_month, 1) <= ctx.today:
            return None  # "they sold the trucks this summer" written in September: the season under way or gone
    return _period_start(ctx, match, first_month, 3)


def _quarter_number(ctx: _Context, match) -> int:
    """The quarter a phrase names ("Q3", "third quarter", "terzo trimestre")."""
    if match.group("q"):
        return int(match.group("q"))
    return ctx.rules.ordinals[(match.group("qord") or match.group("qord2")).lower()]


def _resolve_quarter(ctx: _Context, match) -> date | None:
    """"Q3" → 1 Jul; "after Q3" / "end of Q3" → 1 Oct; a bare "Q3 release" is no time to call, a bare "Q1." is."""
    if match.group("fy"):
        return _fiscal_quarter(ctx, match)
    cued = ctx.rules.recontact_cue.search(ctx.text.clean[max(0, match.start() - 25):match.start()])
    if not (_prep_of(ctx, match.start()) or _modifier(match) or _year_of(match) or cued or _stands_alone(ctx, match)):
        return None
    return _period_start(ctx, match, _quarter_number(ctx, match) * 3 - 2, 3)


def _stands_alone(ctx: _Context, match) -> bool:
    """The phrase is a sentence of its own ("no. price. Q1")."""
    start, end = ctx.text.sentence_span(match.start())
    rest = ctx.text.clean[start:match.start()] + ctx.text.clean[match.end():end]
    return not re.search(r"\w", rest)


def _fiscal_quarter(ctx: _Context, match) -> date | None:
    """"Q1 FY27" → the first day of that quarter of the fiscal year named for the year it ends in, its first month
    read from the note ("their FY starts Jul 1") or January."""
    fiscal = ctx.rules.forms["fiscal"].search(ctx.text.clean)
    ranged = match.group("fy2")  # "FY 2026-27" is written where the fiscal year starts in April (India, UK)
    first_month = _fiscal_month(ctx, fiscal) if fiscal else (4 if ranged else 1)
    fiscal_year = int(ranged or match.group("fy")) % 100 + 2000
    start_year = fiscal_year - 1 if first_month > 1 else fiscal_year
    return date(*_shift_month(start_year, first_month, 3 * (_quarter_number(ctx, match) - 1)), 1)


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


def _resolve_feast(ctx: _Context, match) -> date | None:
    """"after Easter" → the Tuesday after; "after Thanksgiving" → the Monday after; "at Christmas" → 24 Dec;
    "before Ferragosto" → 15 Aug (moved back two weeks by the caller). A feast with no preposition is a greeting."""
    head = ctx.text.clean[max(0, match.start() - 12):match.start()]
    named = next(((name, found) for name, pattern in ctx.rules.feast_region.items() if (found := pattern.search(head))),
                 None)  # "after US Thanksgiving" written in Toronto
    if named:  # the preposition stands before the country's name: it is the feast's
        ctx.preps[match.start()] = _prep_of(ctx, match.start() - len(head) + named[1].start())
    prep = _prep_of(ctx, match.start())
    if prep is None:
        return None
    word = re.sub(r"\s+", " ", match.group("feast").lower())
    key = _regional_feast(ctx.rules.feasts[word], word, named[0] if named else ctx.region)
    for year in (ctx.today.year - 1, ctx.today.year, ctx.today.year + 1):
        span = _feast_span(key, year)
        if span is None:
            continue
        first, last = span
        day = _business_day_after(last) if prep in ("after", "until") else first
        if day > ctx.today:
            return day
    return None


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
    if ctx.rules.relative_not_after.search(tail) or _is_adjective(ctx, match, tail):
        return None
    if ctx.source == "forwarded" and ctx.rules.relative_term_before.search(head):
        return None  # the customer's "we renewed for another two years" says how long, not when to call
    if ctx.rules.relative_duration.search(head):
        if not (ctx.rules.relative_term_before.search(head) or ctx.rules.relative_defer.search(head)):
            return None  # "I didn't follow up for two months", "sparita per tre settimane": how long, not when
    elif not ctx.rules.relative_prep.search(head) and not _cued_right_before(ctx, match.start()) \
            and not ctx.rules.from_now.match(tail) and not _stands_alone(ctx, match):
        return None  # "a payback of 6 years", "pagamento a 60 giorni", "36 months": a length, not a time to call
    amount = float(amount_text) if amount_text.isdigit() else ctx.rules.numbers[re.sub(r"\s+", " ", amount_text)]
    return _add_span(ctx.today, amount, ctx.rules.units[match.group("unit").lower()])


def _is_adjective(ctx: _Context, match, tail: str) -> bool:
    """"120-day terms", "a 3-year contract": a hyphenated span before a noun describes it."""
    return "-" in match.group() and bool(re.match(r"\s+[^\W\d]{3,}", tail)) and not ctx.rules.from_now.match(tail)


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
    month = _fiscal_month(ctx, match)
    return _next_occurrence(ctx.today, lambda y: date(y, month, 1))


def _fiscal_month(ctx: _Context, match) -> int:
    """The first month of the fiscal year a "fiscal" phrase describes."""
    month = ctx.rules.months[match.group("month").lower().rstrip(".")]
    return month % 12 + 1 if match.group("fend") else month


def _resolve_weekday(ctx: _Context, match) -> date | None:
    """"next Tuesday", "martedì prossimo", "on Friday" → the next such day; "tomorrow", "dopodomani"."""
    if match.group("tomorrow"):
        return ctx.today + timedelta(days=ctx.rules.tomorrow[re.sub(r"\s+", " ", match.group("tomorrow").lower())])
    weekday = ctx.rules.weekdays[match.group("wday").lower()]
    if not (match.group("wnext") or match.group("wnext2")) and ctx.rules.weekday_past.search(
            ctx.text.clean[ctx.text.sentence_span(match.start())[0]:match.start()]):
        return None  # "thanks for the call on Monday", "la demo di lunedì": the day it happened
    if match.group("wnext") or match.group("wnext2"):  # "next Wednesday", "mercoledì prossimo": that day of next week
        return ctx.today + timedelta(days=7 - ctx.today.weekday() + weekday)
    return ctx.today + timedelta(days=(weekday - ctx.today.weekday() - 1) % 7 + 1)


def _resolve_nth_weekday(ctx: _Context, match) -> date | None:
    """"the first Thursday of next month", "il primo lunedì di settembre", "the last Friday of the month"."""
    nth = ctx.rules.weekday_ordinals[match.group("nth").lower()]
    weekday = ctx.rules.weekdays[match.group("wday").lower()]
    if match.group("nmonth"):
        return _nth_weekday(*_shift_month(ctx.today.year, ctx.today.month, 1), weekday, nth)
    if match.group("tmonth"):
        day = _nth_weekday(ctx.today.year, ctx.today.month, weekday, nth)
        return day if day > ctx.today else _nth_weekday(*_shift_month(ctx.today.year, ctx.today.month, 1), weekday, nth)
    month = ctx.rules.months[match.group("month").lower().rstrip(".")]
    return _next_occurrence(ctx.today, lambda y: _nth_weekday(y, month, weekday, nth), _year_of(match))


def _resolve_day_of_month(ctx: _Context, match) -> date | None:
    """"venerdì 13", "Friday week, the 5th", "on the 28th": the next such day of this month or the next two."""
    day = int(match.group("day") or match.group("day2"))
    weekday = ctx.rules.weekdays[match.group("wday").lower()] if match.group("wday") else None
    for months in range(3):
        candidate = _safe_date(*_shift_month(ctx.today.year, ctx.today.month, months), day)
        if candidate and candidate > ctx.today and (weekday is None or candidate.weekday() == weekday):
            return candidate
    return None


def _resolve_term(ctx: _Context, match) -> date | None:
    """"contratto annuale … riprovo alla scadenza", "a 2-year contract; call at renewal": today plus the term."""
    if not ctx.rules.expiry.search(ctx.text.clean):
        return None
    if match.group("annual"):
        return ctx.today + relativedelta(years=ctx.rules.term_years[match.group("annual").lower()])
    amount_text = match.group("num").lower()
    amount = float(amount_text) if amount_text.isdigit() else ctx.rules.numbers.get(amount_text)
    unit = ctx.rules.units.get(match.group("unit").lower())
    return _add_span(ctx.today, amount, unit) if amount and unit else None


_RESOLVERS = {
    "explicit": _resolve_explicit, "explicit_md": _resolve_explicit, "iso": _resolve_iso, "numeric": _resolve_numeric,
    "month": _resolve_month, "season": _resolve_season, "quarter": _resolve_quarter,
    "next_quarter": _resolve_next_quarter, "half": _resolve_half, "year_next": _resolve_year_next,
    "year_end": _resolve_year_end, "month_end": _resolve_month_end, "year_number": _resolve_year_number, "holidays": _resolve_holidays,
    "summer_break": _resolve_summer_break, "next_month": _resolve_next_month, "next_week": _resolve_next_week,
    "relative": _resolve_relative, "fiscal": _resolve_fiscal, "weekday": _resolve_weekday, "feast": _resolve_feast,
    "nth_weekday": _resolve_nth_weekday, "day_of_month": _resolve_day_of_month, "term": _resolve_term,
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
    hits: list[DateHit] = []
    spans: list[_Span] = []
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
                continue  # only a weekday a recontact verb points at is worth reading
            span = _span_of(ctx, form, match)
            if span:
                spans.append(span)
                continue
            day = _RESOLVERS[form](ctx, match)
            if day and day > ctx.today:
                hits.append(DateHit(match.start(), match.end(), day, form.removesuffix("_md"), modified=bool(_modifier(match)),
                                    pinned=_is_pinned(ctx, form, match), named=day,
                                    recent_past=_is_recent_past(ctx, form, match, day)))
    hits = _drop_overlaps(hits)  # a span counts from "15 September", not from the "September" inside it
    _days_after_context(ctx, hits)
    hits.extend(filter(None, (_resolve_span(ctx, span, hits) for span in spans)))
    for hit in hits:
        _move_before(ctx, hit)
    return _drop_overlaps(hits)


_PINNABLE = frozenset({"explicit", "explicit_md", "day_of_month"})


def _is_pinned(ctx: _Context, form: str, match) -> bool:
    """"Wednesday, April 8", "Mon 2/23": a weekday with its date is an appointment."""
    if form == "numeric":
        head = ctx.text.clean[max(0, match.start() - 15):match.start()]
        return bool(ctx.rules.weekday_before_number.search(head))
    return form in _PINNABLE and bool(match.groupdict().get("wday"))


def _is_recent_past(ctx: _Context, form: str, match, day: date) -> bool:
    """A month or day named without a year or "next", whose last occurrence was only weeks ago."""
    if form not in ("month", "explicit", "explicit_md") or _year_of(match) or match.groupdict().get("next") \
            or match.groupdict().get("next2") or _modifier(match):
        return False
    if ctx.rules.forms["year_next"].search(ctx.text.clean[max(0, match.start() - 25):match.start()]):
        return False  # "l'anno prossimo a marzo"
    if _prep_of(ctx, match.start()) in ("after", "until"):
        return False  # "on hold until September", "dopo settembre": a time still ahead, whenever it is written
    last = day - relativedelta(years=1)
    return ctx.today - timedelta(days=_RECENT_DAYS) <= last <= ctx.today


def _days_after_context(ctx: _Context, hits: list[DateHit]) -> None:
    """"The board meets on 24 June; I'll chase on the 28th": a bare day of the month follows the date named before it."""
    for index, hit in enumerate(hits):
        earlier = [other.named for other in hits[:index] if other.named and other.named > hit.day
                   and _PRECISION.get(other.form, 1) >= 3]  # a day named, not "after three years on it"
        if hit.form == "day_of_month" and not hit.pinned and earlier:
            base = max(earlier)
            for months in range(2):
                candidate = _safe_date(*_shift_month(base.year, base.month, months), hit.day.day)
                if candidate and candidate > base:
                    hit.day = hit.named = candidate
                    break


def _span_of(ctx: _Context, form: str, match) -> _Span | None:
    """A span counted from another date: "2 months before the renewal", "the day after"; None for anything else."""
    if form in ("day_after", "week_after"):
        return _Span(match.start(), match.end(), 1, 0, False, False, form.removesuffix("_after"))
    if form != "relative":
        return None
    tail = ctx.text.clean[match.end():match.end() + 30]
    before = bool(ctx.rules.span_before.match(tail))
    if not (before or ctx.rules.span_after.match(tail)):
        return None
    amount_text = re.sub(r"\s+", " ", match.group("num").lower())
    amount = float(amount_text) if amount_text.isdigit() else ctx.rules.numbers[amount_text]
    unit = ctx.rules.units[match.group("unit").lower()]
    months = round(amount * (12 if unit == "years" else 1)) if unit in ("months", "years") else 0
    days = 0 if months else round(amount * (7 if unit == "weeks" else 1))
    return _Span(match.start(), match.end(), days, months, before, bool(ctx.rules.span_that.match(tail)))


def _resolve_span(ctx: _Context, span: _Span, hits: list[DateHit]) -> DateHit | None:
    """The span counted from the date it names: the one right after it, else (for "before", "that") the one before.
    With no such date, "3 months after" counts from today like "in 3 months"; "before" names nothing."""
    anchor = _anchor_of(ctx, span, hits)
    if anchor is not None and _is_apposition(ctx, anchor, span.start):
        return None  # "il 19 marzo, il giorno dopo il CdA": the span only explains the date before it
    if anchor is not None and span.kind != "span" and anchor.start >= span.end:
        return None  # "the week after Thanksgiving": the feast read with its "after" already says it
    if anchor is None:
        if span.before or span.kind != "span":
            return None
        day = _add_span(ctx.today, span.months or span.days, "months" if span.months else "days")
    elif span.kind == "day":
        day = _business_day_after(anchor.named)
    elif span.kind == "week":
        day = anchor.named + timedelta(days=7 - anchor.named.weekday())  # the Monday after
    else:
        sign = -1 if span.before else 1
        day = anchor.named + relativedelta(months=sign * span.months, days=sign * span.days)
        while day <= ctx.today and span.before and day.year <= ctx.today.year + 1:
            day += relativedelta(years=1)  # "a couple of months before their renewal on 1 Dec" said in November
    if day is None or day <= ctx.today:
        return None
    return DateHit(span.start, span.end, day, "anchored", named=day)


def _anchor_of(ctx: _Context, span: _Span, hits: list[DateHit]) -> DateHit | None:
    """The date a span counts from: one named right after it, else (for "before", "that", "the day/week after")
    the last one named before it, preferring one said of the same thing ("the week after the board")."""
    if not span.that:
        sentence_end = ctx.text.sentence_span(span.start)[1]
        following = [hit for hit in hits if span.end <= hit.start <= min(sentence_end, span.end + _ANCHOR_WINDOW)
                     and hit.form != "term"]
        if following:
            return min(following, key=lambda hit: hit.start)
    if not (span.before or span.that or span.kind != "span"):
        return None
    earlier = sorted((hit for hit in hits if hit.end <= span.start), key=lambda hit: hit.start)
    noun = _event_noun(ctx, span.end)
    same = [hit for hit in earlier if noun and noun in ctx.text.sentence(hit.start).lower()]
    return (same or earlier or [None])[-1]


def _event_noun(ctx: _Context, end: int) -> str | None:
    """The first long word after a span ("the week after the [committee]", "il giorno dopo la [seduta]")."""
    word = re.search(r"[^\W\d_]{5,}", ctx.text.clean[end:end + 40])
    return word.group().lower()[:-1] if word else None  # "seduta" finds "sedute", "board" "boards"


def _is_apposition(ctx: _Context, first: DateHit, second_start: int) -> bool:
    """Two phrases one after the other, joined only by a comma, colon or bracket: the same date said twice."""
    gap = ctx.text.clean[first.end:second_start]
    return first.end <= second_start and len(gap) <= _PAIR_GAP and "\n\n" not in gap \
        and bool(ctx.rules.apposition.fullmatch(gap))


def _move_before(ctx: _Context, hit: DateHit) -> None:
    """"before Easter", "prima di settembre": about two weeks before the day named, never today or earlier."""
    if hit.form in _SHIFTED_BEFORE and _prep_of(ctx, hit.start) == "before":
        moved = _business_day_after(hit.day - timedelta(days=_BEFORE_DAYS + 1))
        if moved > ctx.today:
            hit.day = moved


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
    score = _BASE_SCORE[hit.form] + (_PINNED if hit.pinned else 0.0)
    if hit.form not in _NEEDS_CUE:
        score += _PREP_SCORE.get(_prep_of(ctx, hit.start), 0.3 if hit.modified else 0.0)
    cue_before, cue_after = _cue_in(ctx, before), _cue_in(ctx, after)
    hit.tied = cue_before == _STRONG_CUE or (cue_after == _STRONG_CUE and hit.form not in _NEEDS_CUE)
    if cue_before:
        score += cue_before
    elif cue_after and hit.form not in _NEEDS_CUE:
        score += cue_after * 0.6
    elif hit.form in _NEEDS_CUE:
        return 0.0
    if hit.form in {"explicit", "numeric"} and ctx.rules.document_date.search(before):
        score -= 2.0
    if ctx.rules.decision_cue.search(clean[sentence_start:sentence_end]):
        score += 0.7
    if ctx.rules.past_cue.search(clean[max(sentence_start, hit.start - 25):min(sentence_end, hit.end + 10)]):
        score -= 2.0
    if ctx.rules.broken_promise.search(before):  # "dovevo richiamarti a febbraio": a call missed, not one planned
        hit.tied = False
        score -= cue_before + _PAST
    if ctx.rules.past_before.search(clean[max(sentence_start, hit.start - 50):hit.start]) \
            or ctx.rules.past_after.match(clean[hit.end:sentence_end]):
        score -= _PAST
    if hit.recent_past:
        score -= _RECENT_PAST
    if hit.form == "relative" and not hit.tied and (hit.day - ctx.today).days > _FAR_SPAN:
        return 0.0
    return score


def _add_then(ctx: _Context, hits: list[DateHit]) -> None:
    """"The board meets on 3 December; I'll follow up with you then": the verb's weight goes to the date before it."""
    for cue in ctx.rules.then_cue.finditer(ctx.text.clean):
        earlier = [hit for hit in hits if hit.end <= cue.start() and cue.start() - hit.end <= _THEN_WINDOW]
        if earlier:
            chosen = max(earlier, key=lambda hit: hit.start)
            chosen.score += _STRONG_CUE
            chosen.tied = True


def _pair_appositions(ctx: _Context, hits: list[DateHit]) -> None:
    """"after the holidays, in mid-January", "mid-September, once Labor Day is behind us": one date said twice;
    the one the calendar names more precisely takes the better score of the two."""
    for first, second in pairwise(hits):
        if not _is_apposition(ctx, first, second.start):
            continue
        ranked = sorted((first, second), key=_precision)
        if _precision(ranked[0]) < _precision(ranked[1]):
            ranked[1].score = max(first.score, second.score) + 0.1


def _precision(hit: DateHit) -> int:
    """How precisely a phrase names its day: a date over a month over a season or a feast."""
    return _PRECISION.get(hit.form, 1) + (1 if hit.modified and hit.form in ("month", "year_number") else 0)


def _cue_in(ctx: _Context, words: str) -> float:
    """What the recontact verbs in `words` add: a call or a follow-up more than a demo or a meeting."""
    cues = [match.group() for match in ctx.rules.recontact_cue.finditer(words)]
    if not cues:
        return 0.0
    return _WEAK_CUE if all(ctx.rules.weak_cue.fullmatch(cue) for cue in cues) else _STRONG_CUE


class Found(NamedTuple):
    """The recontact date of a text, the phrase it came from, whether the text says there is none, and whether a
    recontact verb names the date (the writer asks for a recontact then, rather than mentioning a date)."""

    day: date | None
    evidence: Evidence | None
    none: bool
    asked: bool = False


class Candidates(NamedTuple):
    """Every time phrase of a text with the rules' score of each, and whether the text says there is no date."""

    ctx: _Context
    hits: list[DateHit]
    no_date: bool


# Which of several time phrases is the recontact date, given what each phrase weighs (`hit_features`): the index of
# the chosen one, or None for no date. A learned chooser (service/notes/learned.py) or, without one, the rules' scores.
Chooser = Callable[[list[dict[str, float]]], "int | None"]


def date_candidates(text: Text, today: date, day_first: bool = True, source: str = "note",
                    region: str = "") -> Candidates:
    """Every future time phrase of the text, resolved and scored by the rules (`region` as in `find_recontact`)."""
    rules = rules_for(text.phrases.language)
    ctx = _Context(text, rules, today, day_first, text.phrases.language, source, region=region)
    hits = _find_hits(ctx)
    for hit in hits:
        hit.score = _score(ctx, hit)
    _add_then(ctx, hits)
    _pair_appositions(ctx, hits)
    return Candidates(ctx, hits, bool(rules.no_date.search(text.clean)))


def find_recontact(text: Text, today: date, day_first: bool = True, source: str = "note", region: str = "") -> Found:
    """The recontact date of the text by the rules alone (see `Found`); `region` is the rep's country where feasts
    differ (`region_of`)."""
    return choose_recontact(date_candidates(text, today, day_first, source, region))


def choose_recontact(found: Candidates, chooser: Chooser | None = None) -> Found:
    """The phrase the chooser picks, or without one the rules' best-scored phrase above their floor."""
    ctx, hits, no_date = found
    best = None
    if chooser is not None:
        index = chooser(hit_features(found)) if hits else None
        best = hits[index] if index is not None else None
    else:
        kept = [hit for hit in hits if hit.score >= (_NO_DATE_FLOOR if no_date else _MIN_SCORE)]
        best = _refine(ctx, max(kept, key=lambda hit: (hit.score, hit.start)), kept) if kept else None
    if best is None:
        return Found(None, None, no_date)
    text = ctx.text
    end = best.end - len(text.original[best.start:best.end]) + len(text.original[best.start:best.end].rstrip(". "))
    phrase = text.original[best.start:end]
    return Found(best.day, Evidence("recontact_on", phrase, best.start, end, best.day.isoformat(), ctx.source), False,
                 best.tied)


def hit_features(found: Candidates) -> list[dict[str, float]]:
    """What a chooser weighs of each phrase: its form and the rules' findings (score, preposition, recontact verbs,
    past tense, a decision in the sentence), how far off it is, its rank among the others, and the words each side."""
    ctx, hits, no_date = found
    clean = ctx.text.clean
    top = max((hit.score for hit in hits), default=0.0)
    rows = []
    for rank, hit in enumerate(hits):
        sentence_start, sentence_end = ctx.text.sentence_span(hit.start)
        cue_before = _cue_in(ctx, clean[max(sentence_start, hit.start - _CUE_BEFORE):hit.start])
        cue_after = _cue_in(ctx, clean[hit.end:min(sentence_end, hit.end + _CUE_AFTER)])
        past = ctx.rules.past_cue.search(clean[max(sentence_start, hit.start - 25):min(sentence_end, hit.end + 10)])
        days = (hit.day - ctx.today).days
        row = {"score": hit.score}
        for name, value in (("form", hit.form), ("score_bin", min(max(int(hit.score * 2), -4), 12)),
                            ("prep", _prep_of(ctx, hit.start)), ("cue_before", cue_before),
                            ("cue_after", cue_after), ("tied", hit.tied), ("pinned", hit.pinned),
                            ("modified", hit.modified), ("recent_past", hit.recent_past), ("no_date", no_date),
                            ("days_log2", days.bit_length() - 1 if days > 0 else 0), ("source", ctx.source),
                            ("language", ctx.language), ("hits", min(len(hits), 4)), ("rank", min(rank, 3)),
                            ("last", rank == len(hits) - 1), ("best", hit.score == top),
                            ("decision", bool(ctx.rules.decision_cue.search(clean[sentence_start:sentence_end]))),
                            ("past", bool(past)), ("above_floor", hit.score >= _MIN_SCORE)):
            row[f"{name}={value}"] = 1.0
        add_words_around(row, clean, hit.start, hit.end)
        rows.append(row)
    return rows


def _refine(ctx: _Context, best: DateHit, hits: list[DateHit]) -> DateHit:
    """Among readings almost as likely as the best and within three weeks of it, the most precise one (but "the week
    after the board on 10 March" stays the week after: the date it counts from is no more precise a reading of it)."""
    if best.form == "anchored":
        return best
    close = [hit for hit in hits if hit.score >= best.score - _REFINE_SCORE
             and abs((hit.day - best.day).days) <= _REFINE_DAYS and _precision(hit) > _precision(best)
             and _prep_of(ctx, hit.start) != "until"  # "capex freeze til 6/30, call in July": the end of a wait
             and hit.day == hit.named]  # "ahead of July" moved two weeks back is no more precise than July
    return max(close, key=lambda hit: (_precision(hit), hit.score)) if close else best


def resolve_phrase(phrase: str, phrases: Phrases, today: date, day_first: bool = True) -> date | None:
    """The day a short phrase stands for ("in 3 months", "marzo", "2027-03-01"), e.g. a structured line's value."""
    from service.notes.text import make_text

    day = find_recontact(make_text(phrase, phrases), today, day_first).day
    if day:
        return day
    rules = rules_for(phrases.language)
    ctx = _Context(make_text(phrase, phrases), rules, today, day_first, phrases.language)
    hits = [hit for hit in _find_hits(ctx) if hit.form not in {"weekday"}]
    return hits[0].day if hits else None
