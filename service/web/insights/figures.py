"""What the team learns from its losses: queries, server-drawn SVG charts and CSV exports for /admin/insights.

Cause and reasons are the rep's debrief when there is one, else the reading of the note: the rep knows better.
Charts are plain SVG built here (no script, no CDN) with widths in percent and text in pixels, so they stay
readable from a phone to a wide screen; every chart also has its numbers in a table.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import count

from markupsafe import Markup, escape
from sqlmodel import Session, select

from service.models import Customer, Debrief, OutboundEmail, Outcome, OutcomeCustomer, Rep
from service.pipeline.debrief import Answers

CAUSES = ("external", "internal", "both", "unknown")
CAUSE_LABELS = {"external": "Their side", "internal": "Our side", "both": "Both sides", "unknown": "Not said"}
# Okabe–Ito hues, softened: told apart with every common colour-vision deficiency, calm on white.
CAUSE_COLORS = {"external": "#3b7ea1", "internal": "#e0a040", "both": "#9a74b3", "unknown": "#b7c0c8"}
REASON_LABELS = {
    "budget": "Budget", "timing": "Timing", "consult": "Others to consult", "competitor": "A competitor",
    "no_need": "No current need", "price": "Price", "unconvinced": "Pitch not convincing",
    "relationship": "Relationship not built", "fit": "Fit", "needs": "Needs misunderstood", "other": "Other",
    "other_ours": "Other (our side)", "other_theirs": "Other (their side)",
}
# Which side a reason lies on, for its colour; price, competitor and fit can be either, so they stay grey.
REASON_SIDES = {"budget": "external", "timing": "external", "consult": "external", "no_need": "external",
                "other_theirs": "external", "unconvinced": "internal", "relationship": "internal",
                "needs": "internal", "other_ours": "internal"}
VARIANT_LABELS = {"consult": "Meet the decision makers", "budget": "Budget check-in", "timing": "Timing check-in",
                  "default": "Stay in touch"}
PERIODS = (3, 6, 12, 24)
PIPELINE_WEEKS = 12
_WORD = re.compile(r"[^\W\d_]{3,}")
_STOPWORDS = frozenset("""
the and for with that this was were are not but too our their they them then than have has had more less
next time would should could from into about when what which who will just very also been being out its
all any can did does didn don doesn more most much need needed some such only over under again before after
off else how why where there here those these into onto your you his her him she one two first second
della delle degli dei del che per con non una uno gli le la il lo nel nella sono era erano più meno anche
come quando dopo prima poi loro noi suo sua alla alle allo dal dalla tra fra volta essere stato stata
""".split())
_ids = count(1)


@dataclass(frozen=True)
class Loss:
    """One lost outcome as the insights read it."""

    outcome_id: int
    meeting_on: date
    rep: str
    customers: str
    cause: str
    reasons: tuple[str, ...]
    source: str  # "debrief" or "reading"
    debriefed_at: datetime | None
    plan: str | None
    lesson: str | None
    won_later_on: date | None


@dataclass(frozen=True)
class Upcoming:
    """One scheduled recontact."""

    outbound_id: int
    outcome_id: int | None
    due_at: datetime
    customer: str
    rep: str
    variant: str
    personal_line: str | None


@dataclass(frozen=True)
class Win:
    """A recontact that was followed by a won outcome for the same customer."""

    customer: str
    rep: str
    recontact_id: int
    recontact_sent_at: datetime
    won_outcome_id: int
    won_on: date

    @property
    def days(self) -> int:
        return (self.won_on - self.recontact_sent_at.date()).days


@dataclass(frozen=True)
class Theme:
    """Words that come back in several lessons, with a few of those lessons."""

    term: str
    count: int
    examples: tuple[str, ...]


@dataclass
class Insights:
    """Everything the page shows for one period."""

    since: datetime
    now: datetime
    months: list[str]
    losses: list[Loss]
    upcoming: list[Upcoming]
    wins: list[Win]
    recontacts_sent: int
    themes: list[Theme] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------- queries


def gather(session: Session, *, months: int = 12, now: datetime | None = None) -> Insights:
    """The insights for the last `months` calendar months (this one included)."""
    now = now or datetime.now(UTC)
    labels = month_labels(now.date(), months)
    since = datetime.fromisoformat(f"{labels[0]}-01").replace(tzinfo=UTC)
    found = losses(session, since)
    sent = _sent_recontacts(session, since)
    return Insights(since, now, labels, found, upcoming(session, now), wins(session, sent), len(sent),
                    themes([loss.lesson for loss in reversed(found) if loss.lesson]))


def month_labels(today: date, months: int) -> list[str]:
    """"YYYY-MM" for the last `months` months, oldest first."""
    year, month = today.year, today.month
    labels = []
    for _ in range(months):
        labels.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return labels[::-1]


def losses(session: Session, since: datetime) -> list[Loss]:
    """Lost outcomes whose meeting was on or after `since`, oldest first."""
    query = (select(Outcome, Debrief).join(Debrief, Debrief.outcome_id == Outcome.id, isouter=True)
             .where(Outcome.outcome == "lost", Outcome.meeting_at >= since).order_by(Outcome.meeting_at, Outcome.id))
    pairs = list(session.exec(query))
    customers = _customers_of(session, [o.id for o, _ in pairs])
    reps, won = _rep_names(session), _won_meetings(session)
    return [_loss(o, d, reps, customers.get(o.id, []), won) for o, d in pairs]


def _loss(outcome: Outcome, debrief: Debrief | None, reps: dict, customers: list[Customer], won: dict) -> Loss:
    answers = Answers.from_json(debrief.answers) if debrief else None
    cause = (answers.cause if answers else None) or outcome.cause or "unknown"
    reasons = _debrief_reasons(answers) if answers and (answers.ours or answers.theirs) else tuple(outcome.reasons)
    later = [d for c in customers for d in won.get(c.id, []) if d > outcome.meeting_at]
    return Loss(outcome.id, outcome.meeting_at.date(), reps.get(outcome.rep_id, "?"), _names(customers),
                cause if cause in CAUSES else "unknown", reasons, "debrief" if answers else "reading",
                debrief.submitted_at if debrief else None, debrief.plan if debrief else None,
                debrief.lesson if debrief else None, min(later).date() if later else None)


def _debrief_reasons(answers: Answers) -> tuple[str, ...]:
    """The debrief's boxes as reason keys; "other" keeps its side."""
    ours = tuple("other_ours" if r == "other" else r for r in answers.ours)
    return ours + tuple("other_theirs" if r == "other" else r for r in answers.theirs)


def _customers_of(session: Session, outcome_ids: list[int]) -> dict[int, list[Customer]]:
    found: dict[int, list[Customer]] = defaultdict(list)
    query = select(OutcomeCustomer.outcome_id, Customer).join(Customer, Customer.id == OutcomeCustomer.customer_id)
    for start in range(0, len(outcome_ids), 500):
        for outcome_id, customer in session.exec(query.where(
                OutcomeCustomer.outcome_id.in_(outcome_ids[start:start + 500]))):
            found[outcome_id].append(customer)
    return found


def _rep_names(session: Session) -> dict[int, str]:
    return {rep.id: rep.name for rep in session.exec(select(Rep))}


def _won_meetings(session: Session) -> dict[int, list[datetime]]:
    """Customer id → meeting times of won outcomes."""
    won: dict[int, list[datetime]] = defaultdict(list)
    query = select(OutcomeCustomer.customer_id, Outcome.meeting_at).join(
        Outcome, Outcome.id == OutcomeCustomer.outcome_id).where(Outcome.outcome == "won")
    for customer_id, meeting_at in session.exec(query):
        won[customer_id].append(meeting_at)
    return won


def _names(customers: list[Customer]) -> str:
    return "; ".join(c.name or c.email for c in customers)


def upcoming(session: Session, now: datetime) -> list[Upcoming]:
    """Every scheduled recontact from now on, soonest first."""
    query = (select(OutboundEmail).where(OutboundEmail.kind == "recontact", OutboundEmail.status == "scheduled",
                                         OutboundEmail.due_at >= now - timedelta(hours=1))
             .order_by(OutboundEmail.due_at, OutboundEmail.id))
    reps = _rep_names(session)
    return [Upcoming(r.id, r.outcome_id, r.due_at, r.to_name or r.to_address, reps.get(r.rep_id, "?"), r.variant,
                     r.personal_line) for r in session.exec(query)]


def _sent_recontacts(session: Session, since: datetime) -> list[OutboundEmail]:
    return list(session.exec(select(OutboundEmail).where(
        OutboundEmail.kind == "recontact", OutboundEmail.status == "sent", OutboundEmail.sent_at >= since)
        .order_by(OutboundEmail.sent_at)))


def wins(session: Session, sent: list[OutboundEmail]) -> list[Win]:
    """Sent recontacts followed by a won outcome for the same customer (the first such win each)."""
    won = _won_outcomes(session)
    reps = _rep_names(session)
    found = []
    for row in sent:
        later = [(at, oid) for at, oid in won.get(row.customer_id, []) if at > row.sent_at]
        if later:
            at, outcome_id = min(later)
            found.append(Win(row.to_name or row.to_address, reps.get(row.rep_id, "?"), row.id, row.sent_at,
                             outcome_id, at.date()))
    return found


def _won_outcomes(session: Session) -> dict[int, list[tuple[datetime, int]]]:
    won: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    query = select(OutcomeCustomer.customer_id, Outcome.meeting_at, Outcome.id).join(
        Outcome, Outcome.id == OutcomeCustomer.outcome_id).where(Outcome.outcome == "won")
    for customer_id, meeting_at, outcome_id in session.exec(query):
        won[customer_id].append((meeting_at, outcome_id))
    return won


# ---------------------------------------------------------------------------------------------------- summaries


def by_month(insights: Insights) -> dict[str, list[int]]:
    """Cause → lost outcomes per month (aligned with insights.months)."""
    index = {month: i for i, month in enumerate(insights.months)}
    counts = {cause: [0] * len(insights.months) for cause in CAUSES}
    for loss in insights.losses:
        month = loss.meeting_on.strftime("%Y-%m")
        if month in index:
            counts[loss.cause][index[month]] += 1
    return counts


def by_reason(insights: Insights) -> list[tuple[str, int]]:
    """(reason label, lost outcomes naming it), most frequent first."""
    return [(REASON_LABELS.get(r, r), n) for r, n in _reason_counts(insights)]


def reason_bars(insights: Insights) -> list[tuple[str, list[int]]]:
    """Each reason's count in the column of its side (aligned with CAUSES), so bars take the side's colour."""
    return [(REASON_LABELS.get(r, r), [n if REASON_SIDES.get(r, "unknown") == c else 0 for c in CAUSES])
            for r, n in _reason_counts(insights)]


def _reason_counts(insights: Insights) -> list[tuple[str, int]]:
    counted = Counter(reason for loss in insights.losses for reason in set(loss.reasons))
    return sorted(counted.items(), key=lambda item: (-item[1], item[0]))


@dataclass(frozen=True)
class RepLine:
    name: str
    causes: dict[str, int]
    debriefed: int

    @property
    def lost(self) -> int:
        return sum(self.causes.values())


def by_rep(insights: Insights) -> list[RepLine]:
    """Each rep's losses split by cause, and how many they debriefed; most losses first."""
    causes: dict[str, Counter] = defaultdict(Counter)
    debriefed: Counter = Counter()
    for loss in insights.losses:
        causes[loss.rep][loss.cause] += 1
        debriefed[loss.rep] += loss.debriefed_at is not None
    lines = [RepLine(rep, {c: counted[c] for c in CAUSES}, debriefed[rep]) for rep, counted in causes.items()]
    return sorted(lines, key=lambda line: (-line.lost, line.name))


def by_week(insights: Insights, weeks: int = PIPELINE_WEEKS) -> tuple[list[date], list[int], int]:
    """Week starts (Mondays), recontacts due each week, and how many are due later than that."""
    monday = insights.now.date() - timedelta(days=insights.now.weekday())
    starts = [monday + timedelta(weeks=n) for n in range(weeks)]
    counts = [0] * weeks
    later = 0
    for item in insights.upcoming:
        week = (item.due_at.date() - monday).days // 7
        if 0 <= week < weeks:
            counts[week] += 1
        else:
            later += week >= weeks
    return starts, counts, later


def themes(lessons: list[str], limit: int = 6) -> list[Theme]:
    """Words and word pairs found in at least two lessons: what the team keeps learning."""
    docs = [(text, _terms(text)) for text in lessons]
    counted = Counter(term for _, terms in docs for term in terms)
    ranked = sorted((t for t, n in counted.items() if n >= 2), key=lambda t: (-counted[t], -t.count(" "), t))
    chosen: list[tuple[str, set[int]]] = []
    for term in ranked:
        found = {i for i, (_, terms) in enumerate(docs) if term in terms}
        # "roi" adds nothing once "roi figures" is shown with the same lessons behind it.
        if not any(found <= shown for _, shown in chosen):
            chosen.append((term, found))
    return [Theme(t, len(found), tuple(dict.fromkeys(docs[i][0] for i in sorted(found)))[:3]) for t, found in chosen[:limit]]


def _terms(text: str) -> set[str]:
    """The lesson's meaningful words, and pairs of them that stand side by side, lowercased."""
    words = _WORD.findall(text.lower())
    pairs = {f"{a} {b}" for a, b in zip(words, words[1:], strict=False)
             if a not in _STOPWORDS and b not in _STOPWORDS}
    return {w for w in words if w not in _STOPWORDS} | pairs


# ---------------------------------------------------------------------------------------------------- CSV


EXPORTS = ("losses", "pipeline", "wins")


def export_rows(insights: Insights, name: str) -> tuple[list[str], list[list]]:
    """Header and rows of one export."""
    if name == "losses":
        return (["outcome_id", "meeting_on", "rep", "customers", "cause", "reasons", "source",
                 "debrief_submitted_at", "plan", "lesson", "won_later_on"],
                [[x.outcome_id, x.meeting_on, x.rep, x.customers, x.cause, " ".join(x.reasons), x.source,
                  x.debriefed_at, x.plan, x.lesson, x.won_later_on] for x in insights.losses])
    if name == "pipeline":
        return (["outbound_id", "outcome_id", "due_at_utc", "customer", "rep", "variant", "personal_line"],
                [[x.outbound_id, x.outcome_id, x.due_at, x.customer, x.rep, x.variant, x.personal_line]
                 for x in insights.upcoming])
    if name == "wins":
        return (["customer", "rep", "recontact_id", "recontact_sent_at", "won_outcome_id", "won_on", "days"],
                [[x.customer, x.rep, x.recontact_id, x.recontact_sent_at, x.won_outcome_id, x.won_on, x.days]
                 for x in insights.wins])
    raise KeyError(name)


def csv_text(header: list[str], rows: Iterable[list]) -> str:
    """CSV with ISO dates; text that a spreadsheet would run as a formula is defused."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return buffer.getvalue()


def _cell(value) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, int | float):
        return value
    text = value.isoformat() if isinstance(value, date | datetime) else str(value)
    # A rep's lesson starting with "=" must not become a formula in the admin's spreadsheet (CSV injection).
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# ---------------------------------------------------------------------------------------------------- SVG charts


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: list[int]


def column_chart(labels: list[str], series: list[Series], title: str, *, height: int = 150) -> Markup:
    """Stacked columns, one per label, with the total above each; widths in percent, text in pixels."""
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    # A 3% margin each side keeps the first and last labels inside the chart.
    top, slot = max(max(totals, default=0), 1), 94 / max(len(labels), 1)
    # About 48 characters of labels fit under a phone-wide chart: beyond that, every n-th label only.
    step = max(1, -(-len(labels) * max(map(len, labels), default=1) // 48))
    parts = [f'<line x1="0" x2="100%" y1="{height + 20}" y2="{height + 20}" class="kw-axis"/>']
    for i, label in enumerate(labels):
        x = 3 + i * slot
        parts += _column(x, slot, label, [(s, s.values[i]) for s in series], top, height)
        if totals[i]:
            parts.append(_text(x + slot / 2, height + 20 - totals[i] / top * height - 5, totals[i], "kw-total"))
        if i % step == 0:
            parts.append(_text(x + slot / 2, height + 36, label, "kw-tick"))
    return _svg(title, height + 44, parts)


def _column(x: float, slot: float, label: str, pieces: list[tuple[Series, int]], top: int, height: int) -> list[str]:
    """One stacked column, bottom up."""
    parts, bottom = [], height + 20
    for series, value in pieces:
        if value:
            tall = value / top * height
            bottom -= tall
            parts.append(f'<rect x="{x + slot * 0.2:.2f}%" y="{bottom:.1f}" width="{slot * 0.6:.2f}%" '
                         f'height="{tall:.1f}" rx="2" fill="{series.color}"><title>{escape(label)}: {value} '
                         f'{escape(series.name.lower())}</title></rect>')
    return parts


def bar_chart(rows: list[tuple[str, list[int]]], series: list[Series], title: str, *,
              notes: list[str] | None = None) -> Markup:
    """Horizontal stacked bars, the label above each bar so that long labels fit on a phone."""
    top = max([sum(values) for _, values in rows] + [1])
    parts = []
    for n, (label, values) in enumerate(rows):
        y = n * 46
        parts.append(_label(label, notes[n] if notes else None, y + 14))
        pieces, end = _bar(values, series, top, y + 21, label)
        parts += pieces
        parts.append(_text(end, y + 33, sum(values), "kw-value", anchor="start", dx=6))
    return _svg(title, max(len(rows), 1) * 46 + 4, parts)


def _label(label: str, note: str | None, y: float) -> str:
    """A bar's label, its note beside it in a quieter tone (on the label's line, where a phone has room)."""
    quiet = f'<tspan class="kw-note"> · {escape(note)}</tspan>' if note else ""
    return f'<text x="0" y="{y:.1f}" text-anchor="start" class="kw-label">{escape(label)}{quiet}</text>'


def _bar(values: list[int], series: list[Series], top: int, y: float, label: str) -> tuple[list[str], float]:
    """One stacked bar (at most 78% wide, leaving room for its number) and where it ends, in percent."""
    parts, x = [], 0.0
    for piece, value in zip(series, values, strict=True):
        if value:
            wide = value / top * 78
            parts.append(f'<rect x="{x:.2f}%" y="{y:.1f}" width="{wide:.2f}%" height="16" rx="2" '
                         f'fill="{piece.color}"><title>{escape(label)}: {value} {escape(piece.name.lower())}'
                         f'</title></rect>')
            x += wide
    return parts, x


def _svg(title: str, height: int, parts: list[str]) -> Markup:
    """The chart's frame: an accessible image whose name is the title."""
    chart_id = f"kw-chart-{next(_ids)}"
    return Markup(f'<svg class="kw-chart" role="img" aria-labelledby="{chart_id}" width="100%" height="{height}" '
                  f'xmlns="http://www.w3.org/2000/svg"><title id="{chart_id}">{escape(title)}</title>'
                  f'{"".join(parts)}</svg>')


def _text(x: float, y: float, value, css: str, *, anchor: str = "middle", dx: int = 0) -> str:
    shift = f' dx="{dx}"' if dx else ""
    return (f'<text x="{x:.2f}%" y="{y:.1f}"{shift} text-anchor="{anchor}" class="{css}">'
            f'{escape(str(value))}</text>')
