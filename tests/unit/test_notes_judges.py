"""The learned judges over the rules' candidates: which time phrase is the recontact date, and which of the people
the rules find take part in the decision (service/notes/learned.py `judges`, fitted by service/corpus/train.py)."""

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from service.corpus.compare import same_person
from service.corpus.train import DEV, fit_judges, load_split
from service.notes import understand
from service.notes.learned import NoteModel, PeopleRanking, Weighing, judges, load_model, ranking_rows
from service.notes.model import DecisionMaker
from service.notes.people import (
    KINDS,
    _without_role_words,
    candidates,
    find_decision_makers,
    named_from,
    rules_for,
)
from service.notes.reading import _prepare, _read_by_rules

SENT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
ROME = ZoneInfo("Europe/Rome")
ROOT = Path(__file__).parents[2]


def test_a_weighing_is_a_logistic_regression_over_named_features():
    weighing = Weighing({"a": 2.0, "b": -1.0}, 0.5, cut=0.5)
    assert weighing.probability({}) == pytest.approx(1 / (1 + 2.718281828 ** -0.5))
    assert weighing.probability({"a": 1.0, "b": 1.0, "unknown": 1.0}) == pytest.approx(1 / (1 + 2.718281828 ** -1.5))
    assert 0.0 < Weighing({"a": -1e6}, 0.0, 0.5).probability({"a": 1.0}) < 1e-20  # no overflow


def test_the_chooser_takes_the_most_probable_phrase_or_none_under_its_cut():
    model = NoteModel(None, None, None, {}, thresholds={},
                      recontact=Weighing({"call": 3.0, "story": -3.0}, 0.0, cut=0.6), people=None)
    choose = judges(model).recontact
    assert choose([{"story": 1.0}, {"call": 1.0}, {}]) == 1
    assert choose([{"story": 1.0}, {}]) is None  # 0.5 at best: under the cut
    assert judges(model).people is None


def test_the_people_judge_gives_the_probability_of_each_candidate_at_or_above_its_cut():
    model = NoteModel(None, None, None, {}, thresholds={}, recontact=None,
                      people=Weighing({"role=board": 2.0, "ours=True": -4.0}, 0.0, cut=0.5))
    kept = judges(model).people([{"role=board": 1.0}, {"role=board": 1.0, "ours=True": 1.0}, {}])
    assert kept == [pytest.approx(1 / (1 + 2.718281828 ** -2)), None, 0.5]
    assert judges(NoteModel(None, None, None, {}, thresholds={})) is None  # an older model: the rules stand


def _people(note: str, prefer: list[tuple[str | None, str | None]]) -> set[tuple[str | None, str | None]]:
    """Who a judge that gives `prefer` (the first most probable) and refuses everyone else leaves, once assembled."""
    text = _prepare(note)
    found = candidates(text)
    order = {person: len(prefer) - rank for rank, person in enumerate(prefer)}

    def judge(rows):
        return [order.get((candidate.name, candidate.written)) for candidate in found]
    people, evidence = find_decision_makers(text, "note", judge, found)
    assert len(evidence) == len(people)
    return {(person.name, person.written) for person in people}


def test_a_role_offers_the_judge_every_name_near_it_and_none():
    """The rules put one name to a role; the judge also sees the other names of its sentence, and the role alone."""
    found = candidates(_prepare("Il direttore del terminal ingegner Olcese ha visto la demo con Bianchi."))
    readings = {(candidate.name, candidate.written) for candidate in found}
    assert {(None, "direttore del terminal"), ("Olcese", "direttore del terminal"),
            ("Bianchi", "direttore del terminal")} <= readings
    assert len({candidate.group for candidate in found}) == 1
    assert [candidate.kept for candidate in found if candidate.name] == [False, False]  # the rules keep neither


def test_every_other_name_is_offered_once_without_a_role_and_never_kept_by_the_rules():
    """A name no role points to ("nothing moves without Giorgio's OK") is a candidate of its own, once however often
    it is written, its offsets on the name itself, and without the role or title words the capitals joined to it;
    only a judge can take it."""
    text = _prepare("Lost for now: nothing moves without Giorgio's OK, and Giorgio is away until March. "
                    "Their CFO, Maria Rossi, agrees; so does Anna\nBianchi's deputy. Dvořák, LinkedIn and iPhone too.")
    found = candidates(text)
    lone = [candidate for candidate in found if candidate.features.get("kind=name")]
    # Maria Rossi: the CFO's; "Dvořák" whole (its letters are a name's); no part of "LinkedIn" or "iPhone"
    assert [candidate.name for candidate in lone] == ["Giorgio", "March", "Anna Bianchi", "Dvořák"]
    for candidate in lone:  # the evidence is the name as written, line break and all
        words = candidate.name.split()
        written = text.clean[candidate.start:candidate.end]
        assert written.startswith(words[0]) and written.endswith(words[-1]) and written.split() == words
    giorgio = lone[0]
    assert (giorgio.role, giorgio.written, giorgio.kept) == (None, None, False)
    assert giorgio.features["times=2"] == giorgio.features["possessive"] == 1.0
    assert len({candidate.group for candidate in lone}) == 4 and not {c.group for c in lone} & \
        {c.group for c in found if not c.features.get("kind=name")}
    assert _without_role_words("Presidente Ferraris", rules_for("it")) == "Ferraris"
    assert _without_role_words("Presidente", rules_for("it")) is None
    assert _without_role_words("Carl Whitmore Chairman", rules_for("en")) == "Carl Whitmore"


def test_a_candidate_carries_its_name_words_and_its_nearest_words_by_kind():
    """The judge weighs a name's own words (without a title), how many are common words of the language, and the
    two words each side once more per kind of candidate; a role's nearest words also with whether it is named."""
    found = candidates(_prepare("Lost for now. Their CFO, Maria Rossi, wants Customer Success to ask Dr Hughes."))
    by_name = {candidate.name: candidate.features for candidate in found}
    maria = next(c.features for c in found if c.name == "Maria Rossi" and c.features.get("kind=role"))
    assert maria["nw:maria"] == maria["nw:rossi"] == maria["cw=0"] == 1.0
    assert maria["role|L0:their"] == maria["named=True|L0:their"] == maria["role|R0:wants"] == 1.0
    assert "name|L0:their" not in maria and "named=True|L1:lost" not in maria  # the nearest word alone, by kind
    bare = next(c.features for c in found if c.name is None and c.role == "cfo")
    assert bare["named=False|L0:their"] == bare["bare|L0:their"] == 1.0 and not any(k.startswith("nw:") for k in bare)
    success = by_name["Customer Success"]  # a name near the CFO: "customer" is a common word, "success" not
    assert success["kind=near"] == success["cw=1"] == success["near|R0:to"] == 1.0
    hughes = by_name["Dr Hughes"]  # the title before a surname
    assert hughes["kind=titled"] == hughes["nw:hughes"] == hughes["cw=0"] == hughes["titled|L0:ask"] == 1.0
    assert "nw:dr" not in hughes and not any(key.startswith("named=") and "|" in key for key in hughes)


def test_a_long_thread_offers_at_most_forty_names():
    names = [f"Anna {start}{end}" for start in ("Ber", "Cal", "Dan", "Fer", "Gal", "Lor", "Mar", "Nar")
             for end in ("ini", "oni", "etti", "ano", "elli", "ucci", "ardi", "esi")]  # 64 surnames
    text = _prepare("Lost. " + " ".join(f"Then {name} wrote." for name in names))
    lone = [candidate for candidate in candidates(text) if candidate.features.get("kind=name")]
    assert len(lone) == 40


def test_one_reading_per_role_one_role_per_name_one_mention_per_body():
    note = ("Their CFO, Maria Rossi, and the IT Strategy Committee decide in March; "
            "Maria wants the committee to see a demo first.")
    assert _people(note, [(None, "CFO"), ("Maria Rossi", "CFO")]) == {(None, "CFO")}  # the most probable reading
    assert _people(note, [("Maria Rossi", "CFO"), (None, "committee"), (None, "IT Strategy Committee")]) == \
        {("Maria Rossi", "CFO"), (None, "IT Strategy Committee")}  # "the committee" again: the fuller name stays
    fuller = "Persa. La giunta non ha approvato la spesa: decide la Giunta comunale a marzo."
    assert _people(fuller, [(None, "giunta")]) == {(None, "Giunta comunale")}  # written elsewhere, not judged: taken


def test_the_forwarded_answer_names_the_rep_s_role_or_writes_its_body_in_full():
    read = named_from([DecisionMaker(None, "municipal council", "giunta"), DecisionMaker("Anna", "cfo", "CFO")],
                      [DecisionMaker(None, "municipal council", "Giunta comunale")])
    assert [(person.name, person.role, person.written) for person in read] == \
        [(None, "municipal council", "Giunta comunale"), ("Anna", "cfo", "CFO")]
    assert named_from([DecisionMaker(None, "ceo", "MD")], [DecisionMaker("Shankar Hiremath", "ceo", "MD")]) == \
        [DecisionMaker("Shankar Hiremath", "ceo", "MD")]
    assert [person.written for person in named_from([DecisionMaker(None, "board", "Partnership Board")],
                                                    [DecisionMaker(None, "board", "board")])] == ["Partnership Board"]


def test_a_candidate_is_a_labelled_person_by_name_or_by_a_role_that_holds_the_other():
    committee = candidates(_prepare("Il comitato deciderà a marzo."))[0]
    assert same_person({"name": None, "role": "il comitato di direzione", "role_normalised": "board"}, committee)
    assert not same_person({"name": "Carla Neri", "role": "comitato", "role_normalised": "board"}, committee)
    assert not same_person({"name": None, "role": "CFO", "role_normalised": "cfo"}, committee)


@pytest.fixture(scope="module")
def model():
    found = load_model()
    assert found is not None and found.recontact is not None and found.people is not None, \
        "the shipped model has both judges: keepwarm train-notes fits them"
    return found


@pytest.mark.parametrize(("note", "expected"), [
    ("Lost for now, the board has to approve anything over 10k.", {(None, "board")}),
    ("Il comitato deciderà a marzo.", {(None, "committee")}),
    ("Lost for now: their CFO, Maria Rossi, must approve it.", {("Maria Rossi", "cfo")}),
    ("Lost. I'll ask my manager whether we can offer a discount.", set()),
    ("Thanks to Ian for the tour of the warehouse.", set()),
])
def test_the_judge_keeps_who_decides(model, note, expected):
    reading = understand(note, sent_at=SENT, tz=ROME, model=model)
    assert {(person.name, person.role) for person in reading.decision_makers} == expected


@pytest.mark.parametrize(("note", "expected"), [
    ("Lost: budget frozen until the new fiscal year. I'll call them again in early April.", "2027-04-01"),
    ("Persa per budget. Li richiamo dopo l'Epifania.", "2027-01-07"),
    ("Lost for now. Their contract with the incumbent ends in June 2027; I'll get back to them in April 2027.",
     "2027-04-01"),
    ("They signed in October 2025 with a competitor. Nothing to do for now.", None),
])
def test_the_chooser_picks_the_recontact_phrase(model, note, expected):
    reading = understand(note, sent_at=SENT, tz=ROME, model=model)
    assert (reading.recontact_on.isoformat() if reading.recontact_on else None) == expected
    if expected:
        assert any(item.field == "recontact_on" for item in reading.evidence)


def test_the_judges_only_choose_among_the_rules_candidates(model):
    """On dev, every date and person the judged reader gives is one the rules found in the note or the forwarded
    answer: the judges choose, they never invent (notes with labelled lines or plus-address commands aside)."""
    checked = 0
    for case in load_split(DEV, ROOT):
        given = case.given
        rules = _read_by_rules(given.note, given.sent_at, given.tz, given.forwarded)
        if given.commands or rules.found.spans:
            continue
        parts = [part for part in (rules.note, rules.answer()) if part]
        days = {hit.day for part in parts for hit in part.date_candidates.hits}
        people = {(person.name, person.role) for part in parts for person in part.people_candidates}
        reading = understand(given.note, sent_at=given.sent_at, tz=given.tz, forwarded=given.forwarded,
                             subject=given.subject, model=model)
        assert reading.recontact_on is None or reading.recontact_on in days, case.name
        assert {(person.name, person.role) for person in reading.decision_makers} <= people, case.name
        checked += 1
    assert checked > 100


def test_judges_fit_on_a_labelled_corpus():
    cases = load_split(DEV, ROOT)[:80]
    recontact, people, ranking = fit_judges(cases)
    assert isinstance(recontact, Weighing) and isinstance(people, Weighing)
    assert recontact.weights and people.weights and recontact.cut == 0.3 and people.cut == 0.5
    assert ranking is None  # three corpus folders: too few for the second look's five folds


def test_the_second_look_is_fitted_on_five_writers_or_more():
    folders = [f"tests/notes_blind/train/b{n}" for n in range(1, 7)]
    cases = [case for folder in folders for case in load_split([folder], ROOT)[:25]]
    _, people, ranking = fit_judges(cases)
    assert isinstance(ranking, PeopleRanking) and ranking.cut == 0.5
    assert ranking.weights.shape == (ranking_rows([{"kind=role": 1.0}], [0.5], 0.5).shape[1],)
    assert ranking.weights[0] > 0  # the first look's log-odds still weigh the most


def test_the_second_look_sees_each_candidate_beside_the_others_of_its_part():
    rows = [{"kind=role": 1.0, "named=False": 1.0}, {"kind=name": 1.0, "named=True": 1.0}, {"kind=near": 1.0}]
    features = ranking_rows(rows, [0.3, 0.8, 0.6], 0.5)
    assert features.shape == (3, 30)
    assert list(features[:, 2]) == [0, 1, 0] and list(features[:, 3]) == [0, 0, 1]  # first, second
    assert list(features[:, 4]) == [0.5] * 3 and list(features[:, 5]) == [0.8, 0.6, 0.8]  # two reach 0.5; best other
    assert list(features[:, 8]) == [0, 1, 0]  # named
    assert features[0, 9] == 1 and features[1, 15] == 1 and features[2, 11] == 1  # kinds: role, name, near
    assert ranking_rows([], [], 0.5).shape == (0, 30)
    assert list(ranking_rows(rows, [0.3, 0.8, 0.6], 0.7)[:, 4]) == [0.25] * 3  # one reaches a cut of 0.7


def test_every_kind_of_candidate_is_one_the_second_look_knows():
    note = ("Lost. Their CFO, Maria Rossi, and the board said no; Helen Park (Procurement) agreed, Mr Hughes too. "
            "The other partners (Dr O'Neill and Dr Byrne) and the MD were there. Nothing moves without Giorgio's OK.")
    found = candidates(_prepare(note))
    kinds = {key[5:] for candidate in found for key in candidate.features if key.startswith("kind=")}
    assert {"role", "bare", "near", "share", "titled", "name"} <= kinds <= set(KINDS)


def test_with_a_second_look_the_best_of_a_part_is_taken_when_none_reaches_the_first_cut():
    weights = [0.0] * 30
    weights[0], weights[7] = 1.0, 4.0  # the log-odds, and "first while none reaches 0.5"
    model = NoteModel(None, None, None, {}, thresholds={}, recontact=None,
                      people=Weighing({"good": 1.0}, -1.5, cut=0.5),
                      people_ranking=PeopleRanking(np.array(weights), -1.0, cut=0.5))
    keep = judges(model).people
    alone = keep([{"good": 1.0}, {}])  # first look: 0.38 and 0.18, neither at its cut
    assert alone[0] is not None and alone[1] is None
    assert keep([{"good": 1.0, "more": 1.0}]) != [None]
    assert keep([]) == []


def test_the_reader_follows_its_judges(model):
    """A judge that refuses everything leaves no date and nobody; the rules alone read both; the heads' fields stay."""
    note = "Lost for now, the board has to approve anything over 10k. I'll call them in March."
    refuse = Weighing({}, -10.0, cut=0.5)
    judged = understand(note, sent_at=SENT, tz=ROME, model=replace(model, recontact=refuse, people=refuse,
                                                                      people_ranking=None))
    rules = understand(note, sent_at=SENT, tz=ROME, model=None)
    shipped = understand(note, sent_at=SENT, tz=ROME, model=model)
    assert rules.recontact_on.isoformat() == "2027-03-01" and rules.decision_makers
    assert judged.recontact_on is None and judged.decision_makers == []
    assert not any(item.field in ("recontact_on", "decision_makers") for item in judged.evidence)
    assert (judged.outcome, judged.reasons, judged.cause) == (shipped.outcome, shipped.reasons, shipped.cause)
