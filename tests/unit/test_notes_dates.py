"""Recontact dates: every form, resolved against a fixed email Date in the rep's zone."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from service.notes import Commands, understand

SENT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # Friday 27 Nov 2026
ROME = ZoneInfo("Europe/Rome")


def recontact(note: str, **kwargs) -> date | None:
    """The recontact date the date rules read from `note` (model=None: a model's "won" would drop the date)."""
    kwargs.setdefault("model", None)
    return understand(note, sent_at=kwargs.pop("sent_at", SENT), tz=kwargs.pop("tz", ROME), **kwargs).recontact_on


@pytest.mark.parametrize(
    ("note", "expected"),
    [
        ("Lost. Call them back on 2 February.", date(2027, 2, 2)),
        ("Perso, ricontattare il 15 gennaio 2027.", date(2027, 1, 15)),
        ("No budget. Follow up in 3 months.", date(2027, 2, 27)),
        ("Niente budget, ci risentiamo tra due mesi.", date(2027, 1, 27)),
        ("Not now - try again in 90 days.", date(2027, 2, 25)),
        ("Not now, call in 2 weeks.", date(2026, 12, 11)),
        ("Perso, tra due settimane li richiamo.", date(2026, 12, 11)),
        ("Budget frozen until March, call them then.", date(2027, 3, 1)),
        ("Perso, li richiamo a settembre.", date(2027, 9, 1)),
        ("Lost, recontact mid-March.", date(2027, 3, 15)),
        ("Lost, call them at the end of January.", date(2027, 1, 31)),
        ("Lost on budget; the board meets in early December.", date(2026, 12, 1)),
        ("Lost on timing, call after the summer.", date(2027, 9, 1)),
        ("Lost on timing, try next spring.", date(2027, 3, 1)),
        ("Perso: mi farò sentire in autunno.", date(2027, 9, 1)),
        ("Lost, reach out this winter.", date(2026, 12, 1)),
        ("Lost, call after Christmas.", date(2027, 1, 7)),
        ("Perso, li sento dopo le feste.", date(2027, 1, 7)),
        ("No budget until Q3.", date(2027, 7, 1)),
        ("Lost, recontact after Q3.", date(2027, 10, 1)),
        ("Lost, call at the end of Q1.", date(2027, 4, 1)),
        ("Lost, try again next quarter.", date(2027, 1, 1)),
        ("Lost, call at the start of next quarter.", date(2027, 1, 1)),
        ("No budget: their fiscal year starts in April.", date(2027, 4, 1)),
        ("Niente budget, il loro anno fiscale riparte a luglio.", date(2027, 7, 1)),
        ("Lost, try again next year.", date(2027, 1, 1)),
        ("Perso, ricontattare l'anno prossimo.", date(2027, 1, 1)),
        ("The board meets on 3 December, I'll call them after that.", date(2026, 12, 3)),
        ("Lost. Recontact 2027-03-01.", date(2027, 3, 1)),
    ],
)
def test_date_forms(note, expected):
    assert recontact(note) == expected


@pytest.mark.parametrize(
    "note",
    [
        "Lost, they only need 3 users.",
        "Lost. Call Maria on +39 02 1234 5678 if anything changes.",
        "Lost, they are on version 2.1 and happy with it.",
        "Lost on price: they wanted 30% off on 1,200 licences.",
        "Lost, they handle 1,200 returns a week.",
        "Lost, they want a 30-day trial first.",
        "We met 3 months ago and they went with a competitor.",
    ],
)
def test_numbers_that_are_not_dates(note):
    assert recontact(note) is None


def test_date_is_resolved_in_the_reps_time_zone():
    late_in_london = datetime(2026, 3, 31, 22, 45, tzinfo=UTC)  # already 1 April in Rome
    assert recontact("Niente soldi, riprovare tra tre mesi.", sent_at=late_in_london) == date(2026, 7, 1)


def test_recontact_prefers_the_phrase_with_a_recontact_verb():
    note = "Their contract ends at the end of March 2027, so I'll call them in February."
    assert recontact(note, sent_at=datetime(2026, 5, 20, 9, tzinfo=UTC)) == date(2027, 2, 1)


def test_month_already_past_rolls_to_next_year():
    assert recontact("Lost, call in November.") == date(2027, 11, 1)


def test_us_rep_reads_numeric_dates_month_first():
    note = "Lost, call them back on 3/4/2027."
    assert recontact(note, tz=ZoneInfo("America/New_York")) == date(2027, 3, 4)
    assert recontact(note) == date(2027, 4, 3)


@pytest.mark.parametrize(("command", "expected"), [("3m", date(2027, 2, 27)), ("2w", date(2026, 12, 11)),
                                                   ("90d", date(2027, 2, 25)), ("2027-05-04", date(2027, 5, 4))])
def test_command_recontact_overrides_the_note(command, expected):
    assert recontact("Lost, call in March.", commands=Commands(recontact=command)) == expected


def test_won_sale_has_no_recontact():
    assert recontact("Won! They signed; kickoff on 12 January.") is None


SEPT = datetime(2026, 9, 15, 10, 0, tzinfo=UTC)  # Tuesday 15 Sep 2026


@pytest.mark.parametrize(
    ("note", "sent_at", "expected"),
    [
        # feasts with a date of their own; "after X" is the first business day after X
        ("Lost for now. I'll call them the week after Thanksgiving.", SEPT, date(2026, 11, 30)),
        ("No budget until after Easter, I'll call them then.", SENT, date(2027, 3, 30)),
        ("Perso, li richiamo dopo Pasqua.", SENT, date(2027, 3, 30)),
        ("Perso per ora, ci risentiamo dopo la Befana.", SENT, date(2027, 1, 7)),
        ("Perso, li richiamo dopo Ferragosto.", SENT, date(2027, 8, 16)),
        ("Ne riparliamo dopo la vendemmia, li richiamo a quel punto.", SENT, date(2027, 10, 1)),
        ("Niente da fare ora: li richiamo dopo la potatura.", SENT, date(2027, 3, 1)),
        ("Lost for now, call them after Labour Day.", SENT, date(2027, 5, 3)),
        # "before X": about two weeks before it; "a couple of months before X": X minus two months
        ("Lost for now, call them before Christmas.", SENT, date(2026, 12, 10)),
        ("Lost. I'll reach out a couple of months before their renewal next October.", SENT, date(2027, 8, 1)),
        ("Li ricontatto un paio di mesi prima della scadenza del contratto, a ottobre 2027.", SENT, date(2027, 8, 1)),
        ("Renewed with the incumbent; renewal is Dec 1 every year, so hit them up a couple months before next year's "
         "renewal.", SENT, date(2027, 10, 1)),
        # seasons with a year, parts of a month, the nth weekday, next weekday
        ("Lost on price; they signed a 2 yr term so realistically recontact spring 2028.", SENT, date(2028, 3, 1)),
        ("I will follow up in the second half of January with a small proposal.", SENT, date(2027, 1, 16)),
        ("I'll give you a call in the first week of August.", SENT, date(2027, 8, 2)),
        ("Mi ha chiesto di richiamarlo il primo giovedì del mese prossimo.", SENT, date(2026, 12, 3)),
        ("Call them on the first Thursday of next month.", SENT, date(2026, 12, 3)),
        ("Risentire dopo le ferie: il primo lunedì di settembre.", SENT, date(2027, 9, 6)),
        ("Richiamare martedì prossimo.", SENT, date(2026, 12, 1)),
        ("It goes to their board on 14 December; I shall chase on the 17th if I hear nothing.", SENT,
         date(2026, 12, 17)),
        ("Circle back Jan '27, start from scratch with the new HR Dir.", SENT, date(2027, 1, 1)),
        ("Their FY starts Jul 1 -> circle back Q1 FY28.", SENT, date(2027, 7, 1)),
        # one date said twice: the precise one; a date named for someone else's event and ours after it
        ("Ci riprovo dopo le feste, verso metà gennaio.", SENT, date(2027, 1, 15)),
        ("Lost for now, I'll call them after Memorial Day.", SENT, date(2027, 6, 1)),
        ("The budget review is on April 7. I'll follow up Wednesday, April 8 to hear how it landed.", SENT,
         date(2027, 4, 8)),
        ("Il CdA si riunisce il 14 dicembre; mi permetterò di contattarla il giorno successivo alla seduta.", SENT,
         date(2026, 12, 15)),
        ("The committee meets on 9 December. I will contact you in the week after the committee.", SENT,
         date(2026, 12, 14)),
        ("Perso: hanno firmato col concorrente, contratto annuale. Riprovo alla scadenza.", SENT, date(2027, 11, 27)),
    ],
)
def test_relative_date_forms(note, sent_at, expected):
    assert recontact(note, sent_at=sent_at) == expected


@pytest.mark.parametrize(
    ("note", "sent_at"),
    [
        ("She left in November and never introduced me to the new buyer. Lost.", datetime(2027, 1, 13, 10, tzinfo=UTC)),
        ("Perso. Dopo la demo di settembre non li ho più richiamati, colpa mia.", datetime(2025, 11, 14, 10, tzinfo=UTC)),
        ("Lost, my fault. I missed the call with their VP HR on Apr 28. Not setting a recontact.",
         datetime(2027, 5, 7, 10, tzinfo=UTC)),
        ("Lost: they only buy on 120-day terms and we don't go past 60.", SENT),
    ],
)
def test_dates_that_are_not_recontacts(note, sent_at):
    assert recontact(note, sent_at=sent_at) is None


@pytest.mark.parametrize("note", ["Lost for now: it is on hold until September; I'll be in touch then.",
                                  "Perso per ora: è tutto fermo fino a settembre, li risento allora."])
def test_a_month_just_gone_after_until_is_the_next_one(note):
    assert understand(note, sent_at=SENT, tz=ROME, model=None).recontact_on == date(2027, 9, 1)


TORONTO = ZoneInfo("America/Toronto")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("note", "sent_at", "expected"),
    [
        # "early November", "ai primi di maggio", "the first week of March": the month's first full working week
        ("Lost for now; I'll get back to her early November.", datetime(2025, 9, 9, 10, tzinfo=UTC), date(2025, 11, 3)),
        ("Perso per ora, li richiamo ai primi di maggio.", datetime(2026, 1, 28, 10, tzinfo=UTC), date(2026, 5, 4)),
        ("Pilot running. Follow up 1st week of March.", datetime(2026, 2, 3, 10, tzinfo=UTC), date(2026, 3, 2)),
        ("No for 2026. I'll be back in touch early in January.", datetime(2026, 10, 22, 10, tzinfo=UTC),
         date(2027, 1, 4)),
        # a bare numeric date after a recontact verb or a weekday
        ("- decide il titolare entro fine mese\n- richiamare l'1/10 se tace", datetime(2026, 9, 15, 10, tzinfo=UTC),
         date(2026, 10, 1)),
        ("Security review starts next week. Let's sync again Mon 23/2.", datetime(2026, 2, 9, 16, tzinfo=UTC),
         date(2026, 2, 23)),
        # the days after a meeting named earlier: the working day after it
        ("La proposta va in Giunta nella seduta del 16 dicembre. Mi riservo di contattarla nei giorni "
         "immediatamente successivi alla seduta.", SENT, date(2026, 12, 17)),
        # "until 6/30": the end of a wait, not a more precise reading of "July"
        ("Capex freeze til 6/30. Lost for now. Call Ron in July when new FY budgets land.",
         datetime(2025, 12, 9, 16, tzinfo=UTC), date(2026, 7, 1)),
        # a bare "the 15th" follows a day named before it, never a span ("after three years")
        ("They worry about re-training after three years on the current platform. The board meets on the 14th; "
         "I'll call you on the 15th.", datetime(2025, 10, 3, 16, tzinfo=UTC), date(2025, 10, 15)),
    ],
)
def test_more_relative_date_forms(note, sent_at, expected):
    assert recontact(note, sent_at=sent_at) == expected


@pytest.mark.parametrize(
    ("note", "tz", "expected"),
    [
        # feasts read in the rep's country: Canada's Thanksgiving is in October, North America's Labour Day in September
        ("So we'll park it for now. I'll touch base after Thanksgiving.", TORONTO, date(2026, 10, 13)),
        ("Not this summer. I'll reach out after Labour Day.", TORONTO, date(2026, 9, 8)),
        ("Not this summer. I'll reach out after Labour Day.", NEW_YORK, date(2026, 9, 8)),
        ("Budget is tight. Follow up after US Thanksgiving.", TORONTO, date(2026, 11, 30)),
        ("Lost for now. I'll touch base after Thanksgiving.", NEW_YORK, date(2026, 11, 30)),
    ],
)
def test_feasts_of_the_reps_country(note, tz, expected):
    assert recontact(note, sent_at=datetime(2026, 6, 16, 16, tzinfo=UTC), tz=tz) == expected


@pytest.mark.parametrize(
    ("note", "sent_at"),
    [
        # a weekday the thing thanked for happened on
        ("Thank you for your call on Monday. I understand you've decided not to take it further.", SENT),
        ("Grazie per il feedback dopo la demo di lunedì. Restate col fornitore attuale, lo capisco.", SENT),
        # "this summer" once the summer has begun: the one under way or gone
        ("Lost. They changed the business model this summer and sold all the trucks; they don't need us.",
         datetime(2026, 9, 8, 16, tzinfo=UTC)),
        # a month named for the first contact, told as a story
        ("Lost, on me: I dropped the ball after our first chat in October. They moved on.",
         datetime(2025, 12, 18, 10, tzinfo=UTC)),
    ],
)
def test_more_dates_that_are_not_recontacts(note, sent_at):
    assert recontact(note, sent_at=sent_at) is None


def test_a_us_rep_writes_the_month_first():
    assert recontact("Security review starts next week. Let's sync again Mon 2/23.", tz=NEW_YORK,
                     sent_at=datetime(2026, 2, 9, 16, tzinfo=UTC)) == date(2026, 2, 23)
    assert recontact("Rough call. Next call 5/28 w/ Shawn + Linda.", tz=NEW_YORK,
                     sent_at=datetime(2026, 5, 12, 16, tzinfo=UTC)) == date(2026, 5, 28)
    assert recontact("Rough call. Next call 28/5 w/ Shawn + Linda.", tz=NEW_YORK,
                     sent_at=datetime(2026, 5, 12, 16, tzinfo=UTC)) is None


def test_this_winter_said_in_spring_is_the_coming_one():
    assert recontact("No need right now. I'll check in this winter, in case hiring picks up.",
                     sent_at=datetime(2026, 5, 28, 14, tzinfo=UTC)) == date(2026, 12, 1)
