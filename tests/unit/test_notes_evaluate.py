"""The corpus scorer: per-field accuracy and the list of misses."""

from datetime import date

from service.notes import DecisionMaker, NoteReading
from service.notes.evaluate import evaluate, format_report


def test_evaluate_counts_fields_and_lists_misses():
    expected = {"outcome": "lost", "cause": "external", "reasons": ["budget", "consult"], "recontact_on": "2027-03-01",
                "decision_makers": [{"name": "Maria Rossi", "role": "CFO"}, {"name": None, "role": "board"}]}
    right = NoteReading("lost", "external", ["consult", "budget"], date(2027, 3, 1),
                        [DecisionMaker(None, "board"), DecisionMaker("maria rossi", "cfo")])
    wrong = NoteReading("lost", "unknown", ["budget"], date(2027, 3, 2), [])
    report = evaluate([("a.eml", expected, right), ("b.eml", expected, wrong)])
    assert report.accuracy("outcome") == 1.0
    assert report.accuracy("reasons") == 0.5
    assert report.accuracy("decision_makers") == 0.5
    assert {(miss.file, miss.field) for miss in report.misses} == {
        ("b.eml", "cause"), ("b.eml", "reasons"), ("b.eml", "recontact_on"), ("b.eml", "decision_makers")}
    text = format_report(report)
    assert text.splitlines()[0].split() == ["field", "correct/total", "accuracy%"]
    assert "b.eml  recontact_on" in text
