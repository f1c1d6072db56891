"""The optional language-model reader against a local HTTP server that speaks the OpenAI chat protocol.

No model can run on these machines: the server replays recorded answers, so what is tested is the protocol, the
schema, the evidence check, the disagreement rule and the fallbacks (errors, timeouts, junk).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime

import pytest

from service.intake.reading import RepInfo, read_raw
from service.notes.llm import LLMConfig, ask
from service.settings import Settings
from tests.local_servers import JsonRequest, JsonServer
from tests.mail import recap

NOTE = "Hi Jane,\n\nthanks for today. I understand the budget isn't there until next April; let's talk then.\n\nTom\n"
# Labelled lines are the rep's explicit word: the built-in reader is sure of them, whatever its model says.
LABELLED = "Outcome: lost\nReasons: budget\n\nThanks for today, Jane. Let's talk again next April.\n\nTom\n"


def _answer(**changes) -> dict:
    answer = {"outcome": "lost", "outcome_evidence": "the budget isn't there", "cause": "external",
              "cause_evidence": "the budget isn't there", "reasons": ["budget"],
              "reasons_evidence": "the budget isn't there", "recontact_on": "2027-04-01",
              "recontact_evidence": "until next April", "decision_makers": []}
    return {**answer, **changes}


class _Model:
    """POST /v1/chat/completions: the next recorded answer (a dict, an HTTP status, or ("sleep", seconds))."""

    def __init__(self):
        self.answers, self.requests = [], []
        self.server = JsonServer(self.answer)
        self.url = f"{self.server.url}/v1"

    def answer(self, request: JsonRequest) -> tuple[int, dict | None]:
        self.requests.append((request.path, request.json()))
        answer = self.answers.pop(0)
        if isinstance(answer, tuple):
            time.sleep(answer[1])
            answer = _answer()
        if isinstance(answer, int):
            return answer, None
        content = answer if isinstance(answer, str) else json.dumps(answer)
        return 200, {"choices": [{"message": {"role": "assistant", "content": content}}]}


@pytest.fixture
def endpoint():
    model = _Model()
    yield model
    model.server.close()


def _read(endpoint, body: str = NOTE, timeout: float = 5.0):
    url = endpoint.url if endpoint else None
    settings = Settings(intake_address="followup@acme.example", llm_url=url, llm_model="recorded", llm_timeout=timeout)

    class Directory:
        def rep(self, address):
            return RepInfo(1, "tom.baker@acme.example", "Tom Baker", "Europe/London")

        def seen(self, message_id):
            return False

    return read_raw(recap(1, body=body, date=datetime(2026, 11, 20, 15, tzinfo=UTC)), settings, Directory())


def test_the_request_follows_the_protocol_and_asks_for_the_schema(endpoint):
    endpoint.answers.append(_answer())
    reading = _read(endpoint)
    path, request = endpoint.requests[0]
    assert path == "/v1/chat/completions"
    assert request["model"] == "recorded" and request["response_format"]["type"] == "json_schema"
    assert "until next April" in request["messages"][1]["content"]
    assert reading.outcome == "lost" and reading.unsure == _read(None).unsure


def test_a_quoted_disagreement_makes_the_field_unsure(endpoint):
    assert "outcome" not in _read(None, LABELLED).unsure
    endpoint.answers.append(_answer(outcome="unknown", outcome_evidence="Let's talk again next April"))
    reading = _read(endpoint, LABELLED)
    assert reading.outcome == "lost"  # the built-in reading stands...
    assert "outcome" in reading.unsure  # ...but the customer emails will wait for the rep


def test_a_disagreement_whose_quote_is_not_in_the_note_is_ignored(endpoint):
    endpoint.answers.append(_answer(outcome="won", outcome_evidence="they signed the contract"))
    assert "outcome" not in _read(endpoint, LABELLED).unsure


def test_a_quoted_recontact_fills_what_the_built_in_reader_missed(endpoint):
    note = "Hi Jane,\n\nthanks for your time. Not this year for us, we agreed; I'll ring you after the trade fair.\n"
    endpoint.answers.append(_answer(recontact_on="2027-05-20", recontact_evidence="after the trade fair"))
    reading = _read(endpoint, note)
    assert reading.recontact_on == "2027-05-20"
    assert any(e["source"] == "llm" and e["phrase"] == "after the trade fair" for e in reading.evidence)


@pytest.mark.parametrize("answer", [500, "this is not JSON", {"outcome": "maybe"}])
def test_errors_and_junk_leave_the_built_in_reading_alone(endpoint, answer):
    endpoint.answers.append(answer)
    reading, built_in = _read(endpoint), _read(None)
    assert (reading.outcome, reading.reasons, reading.unsure) == (built_in.outcome, built_in.reasons, built_in.unsure)


def test_a_timeout_leaves_the_built_in_reading_alone(endpoint):
    endpoint.answers.append(("sleep", 2.0))
    config = LLMConfig(endpoint.url, "recorded", timeout=0.3)
    assert ask(config, NOTE, today=date(2026, 11, 20)) is None


def test_an_endpoint_that_is_down_leaves_the_built_in_reading_alone():
    config = LLMConfig("http://127.0.0.1:9/v1", "recorded", timeout=1.0)  # port 9 (discard): nothing listens
    assert ask(config, NOTE, today=date(2026, 11, 20)) is None
