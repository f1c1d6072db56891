"""The corpus scorer: what counts as right for each field, and the tables eval-notes prints."""

from service.corpus.score import Scored, Scores, format_scores, is_right, wrong_kind

LOST = {"outcome": "lost", "cause": "external", "reasons": ["budget", "consult"], "recontact_on": "2027-03-01",
        "recontact_by": "2027-03-31", "language": "en", "customers": ["jane@globex.example"],
        "decision_makers": [{"name": "Dott. Maria Rossi", "role": "direttore finanziario", "role_normalised": "cfo"},
                            {"name": None, "role": "il CdA", "role_normalised": "board"}]}


def test_reasons_are_a_set_and_a_recontact_is_right_anywhere_in_its_window():
    assert is_right("reasons", LOST, {"reasons": ["consult", "budget"]})
    assert not is_right("reasons", LOST, {"reasons": ["budget"]})
    assert is_right("recontact_on", LOST, {"recontact_on": "2027-03-15"})
    assert not is_right("recontact_on", LOST, {"recontact_on": "2027-04-01"})
    assert not is_right("recontact_on", LOST, {"recontact_on": None})
    assert is_right("recontact_on", {"recontact_on": None}, {"recontact_on": None})
    assert is_right("recontact_on", {"recontact_on": "2027-03-01"}, {"recontact_on": "2027-03-01"})  # no window


def test_people_match_by_name_without_titles_or_by_role_as_written_or_normalised():
    got = [{"name": "board", "role": None}]
    assert not is_right("decision_makers", LOST, {"decision_makers": got})
    right = [{"name": None, "role": "Board"}, {"name": "Maria Rossi", "role": "cfo"}]
    assert is_right("decision_makers", LOST, {"decision_makers": right})
    as_written = [{"name": None, "role": "il cda"}, {"name": "maria rossi", "role": None}]
    assert is_right("decision_makers", LOST, {"decision_makers": as_written})
    one_more = [*right, {"name": "Ugo Neri", "role": "ceo"}]
    assert not is_right("decision_makers", LOST, {"decision_makers": one_more})


def test_a_role_as_written_is_compared_without_its_article_or_possessive():
    """Labellers wrote "la commissione" or "commissione", "their CFO" or "CFO"; the reader keeps roles without them."""
    labelled = {"decision_makers": [{"name": None, "role": "La commissione", "role_normalised": "evaluation committee"},
                                    {"name": None, "role": "their finance committee", "role_normalised": "finance"}]}
    read = [{"name": None, "role": "commissione"}, {"name": None, "role": "finance committee"}]
    assert is_right("decision_makers", labelled, {"decision_makers": read})
    assert not is_right("decision_makers", labelled, {"decision_makers": [read[0], {"name": None, "role": "committee"}]})


def _case(expected: str, got: str, unsure: list[str]) -> Scored:
    reading = {"outcome": got, "confidences": {"outcome": 0.5}, "unsure": unsure}
    return Scored(f"{expected}-{got}.eml", {"outcome": expected}, reading, {"outcome": expected == got})


def test_wrong_kind_emails_count_only_what_would_leave_unheld():
    scores = Scores([_case("lost", "won", []), _case("unknown", "lost", ["outcome"]),
                     _case("won", "won", []), _case("lost", "unknown", [])])
    assert wrong_kind(scores) == (2, 1)  # a loss read as open plans no customer email: not of the wrong kind
    text = format_scores(scores)
    assert text.splitlines()[0].split() == ["field", "right/total", "accuracy%"]
    assert "customer emails of the wrong kind: 2 planned, 1 not held for the rep" in text
    assert "lost-won.eml  outcome: expected 'lost'  got 'won'" in text
