"""An optional second reader: any OpenAI-compatible chat endpoint, asked for JSON that follows a schema.

Off by default (`KEEPWARM_LLM_URL`). It never overrules the built-in reader on what decides a customer email:
- a value counts only when its quoted evidence stands in the note (a model may invent; a quote can be checked);
- outcome, cause, reasons: where it disagrees with the built-in reader, the field becomes unsure, so planning
  holds the customer emails for the rep's confirmation;
- recontact date and decision makers: where the built-in reader found none, a quoted one is taken;
- on an error, a timeout or an answer that does not follow the schema, the built-in reader stands alone.
The HTTP call is plain `urllib` (one POST, JSON in and out): no client library is needed for it.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date

from service.notes.model import CAUSES, OUTCOMES, REASONS, DecisionMaker, Evidence, NoteReading

logger = logging.getLogger(__name__)

_TEXT = {"type": ["string", "null"]}
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["outcome", "outcome_evidence", "cause", "cause_evidence", "reasons", "reasons_evidence",
                 "recontact_on", "recontact_evidence", "decision_makers"],
    "properties": {
        "outcome": {"enum": list(OUTCOMES)}, "outcome_evidence": _TEXT,
        "cause": {"enum": [*CAUSES, None]}, "cause_evidence": _TEXT,
        "reasons": {"type": "array", "items": {"enum": list(REASONS)}}, "reasons_evidence": _TEXT,
        "recontact_on": {"type": ["string", "null"], "description": "YYYY-MM-DD"}, "recontact_evidence": _TEXT,
        "decision_makers": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["name", "role", "evidence"],
            "properties": {"name": _TEXT, "role": _TEXT, "evidence": {"type": "string"}}}},
    },
}
INSTRUCTIONS = """You read a salesperson's note about a customer meeting and answer in JSON following the schema.
outcome: won (sale made), lost (no sale for now, whatever the reason), unknown (still open or not said).
cause (lost only, else null): external (customer's circumstances: budget, timing, must consult others, no need),
internal (our pitch did not convince, relationship not built, our mistake), unknown (cannot tell).
reasons (lost only): any of budget, timing, consult, competitor, no_need, price, unconvinced, relationship, fit,
other. recontact_on: the date to get back in touch, resolved against the email's date given below, or null.
decision_makers: other people of the customer who take part in the decision (not the addressee, not our staff).
Every *_evidence and each person's evidence must be words copied exactly from the note."""


@dataclass(frozen=True)
class LLMConfig:
    url: str
    model: str
    api_key: str | None = None
    timeout: float = 20.0


def ask(config: LLMConfig, note: str, *, today: date, subject: str = "", forwarded: str | None = None) -> dict | None:
    """The endpoint's reading of the note as a dict, or None when it could not give one."""
    text = f"Email date: {today.isoformat()}\nSubject: {subject}\n\nNote:\n{note}"
    if forwarded:
        text += f"\n\nForwarded customer email:\n{forwarded}"
    body = {"model": config.model, "temperature": 0,
            "messages": [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": text}],
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "note_reading", "strict": True, "schema": SCHEMA}}}
    headers = {"Content-Type": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    request = urllib.request.Request(config.url.rstrip("/") + "/chat/completions", data=json.dumps(body).encode(),
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=config.timeout) as response:  # noqa: S310 (admin-set URL)
            answer = json.loads(json.load(response)["choices"][0]["message"]["content"])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:  # URLError and timeouts are OSErrors
        logger.warning("language-model reader unavailable (%s): the built-in reader stands", error)
        return None
    return answer if _follows_schema(answer) else None


def _follows_schema(answer) -> bool:
    """The few checks that matter here: known values, lists where lists belong."""
    ok = isinstance(answer, dict) and answer.get("outcome") in OUTCOMES and answer.get("cause") in (*CAUSES, None)
    ok = ok and isinstance(answer.get("reasons"), list) and all(r in REASONS for r in answer["reasons"])
    ok = ok and isinstance(answer.get("decision_makers", []), list)
    if not ok:
        logger.warning("language-model reader: the answer does not follow the schema; the built-in reader stands")
    return ok


def quoted(evidence, text: str) -> tuple[int, int] | None:
    """Where the quoted words stand in the text (blanks and case folded), or None."""
    if not isinstance(evidence, str) or not evidence.strip():
        return None
    pattern = r"\s+".join(re.escape(word) for word in evidence.split())
    match = re.search(pattern, text, re.I)
    return (match.start(), match.end()) if match else None


def second_opinion(reading: NoteReading, answer: dict | None, text: str) -> NoteReading:
    """The built-in reading with the endpoint's quoted disagreements marked unsure and its quoted finds added."""
    if not answer:
        return reading
    for name in ("outcome", "cause", "reasons"):
        if quoted(answer.get(f"{name}_evidence"), text) and _differs(name, answer.get(name), reading):
            reading.unsure = sorted({*reading.unsure, name})
    _take_recontact(reading, answer, text)
    _take_people(reading, answer, text)
    return reading


def _differs(name: str, value, reading: NoteReading) -> bool:
    if name != "outcome" and reading.outcome != "lost":
        return False
    if name == "reasons":
        return set(value or []) != set(reading.reasons)
    return value != getattr(reading, name)


def _take_recontact(reading: NoteReading, answer: dict, text: str) -> None:
    span = quoted(answer.get("recontact_evidence"), text)
    if reading.recontact_on is not None or span is None:
        return
    try:
        day = date.fromisoformat(str(answer.get("recontact_on")))
    except ValueError:
        return
    reading.recontact_on = day
    reading.evidence.append(Evidence("recontact_on", text[span[0]:span[1]], *span, day.isoformat(), "llm"))


def _take_people(reading: NoteReading, answer: dict, text: str) -> None:
    if reading.decision_makers:
        return
    for person in answer.get("decision_makers") or []:
        span = quoted(person.get("evidence") if isinstance(person, dict) else None, text)
        if span:
            reading.decision_makers.append(DecisionMaker(person.get("name") or None, person.get("role") or None))
            reading.evidence.append(Evidence("decision_makers", text[span[0]:span[1]], *span,
                                             person.get("name") or person.get("role") or "", "llm"))
