"""The debrief's choices in the rep's language. The pipeline owns the choices and their English wording; these are
the same words marked for the gettext catalogs (tests/unit/test_i18n.py keeps the two in step)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

OUTCOME_LABELS = {"lost": _l("Lost: no sale for now"), "won": _l("Won: sale made"),
                  "unknown": _l("Not decided yet")}
OUR_SIDE_LABELS = {"unconvinced": _l("Our pitch was not convincing"), "needs": _l("We misunderstood their needs"),
                   "relationship": _l("The relationship was not built yet"), "other": _l("Something else")}
THEIR_SIDE_LABELS = {"budget": _l("Budget"), "timing": _l("Timing"), "consult": _l("They must consult others"),
                     "other": _l("Something else")}
PLAN_LABELS = {"recontact_on_date": _l("Recontact on a date"),
               "meet_decision_makers": _l("Meet the other decision makers"),
               "new_proposal": _l("Try a new proposal"), "stay_in_touch": _l("Stay in touch, no date"),
               "no_recontact": _l("No recontact")}
# An email's status as the rep's pages show it (the outbox's own words in English).
STATUS_LABELS = {"held": _l("held"), "scheduled": _l("scheduled"), "sending": _l("sending"), "sent": _l("sent"),
                 "canceled": _l("canceled"), "failed": _l("failed")}


def labelled(words: dict[str, str], labels: dict) -> dict:
    """The pipeline's choices (its keys, in its order) with their label in the page's language."""
    return {key: labels.get(key, english) for key, english in words.items()}


# Why an email was canceled, for the rep's pages (English: the outbox's own words); a reason not listed (one that
# names an outcome) stays as written.
REASON_LABELS = {"canceled by the rep": _l("canceled by the rep"), "debrief submitted": _l("debrief submitted"),
                 "debrief: no recontact": _l("debrief: no recontact"), "debrief: replaced": _l("debrief: replaced"),
                 "suppressed": _l("suppressed"), "undeliverable": _l("undeliverable"),
                 "canceled from the command line": _l("canceled from the command line")}


def reason_text(reason: str | None) -> str | None:
    """A canceled email's reason in the page's language."""
    return REASON_LABELS.get(reason, reason) if reason else reason
