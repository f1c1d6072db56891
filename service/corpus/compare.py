"""How a person read is compared with a labelled decision maker: what `eval-notes` counts as the same person, and
what the people's judge learns from (service/corpus/train.py)."""

from __future__ import annotations

import re

from service.notes.people import Candidate, role_as_written


def _low(value) -> str | None:
    return " ".join(str(value).lower().split()) if value else None


_TITLE = re.compile(r"^(?:(?:dr|dott|dott\.?ssa|dssa|sig|sig\.?ra|sig\.?na|mr|mrs|ms|miss|ing|avv|prof|geom|rag)\.?\s+)+",
                    re.I)


def _name(value) -> str | None:
    """A person's name without the titles labellers and readers write or leave out ("Dott. Aldo Frigerio")."""
    return _low(_TITLE.sub("", value.strip())) if value else None


def _role(value) -> str | None:
    """A role as written without its article or possessive ("la commissione", "their CFO"): the reader keeps roles
    without them (people.py `role_as_written`), and labellers wrote them either way."""
    return _low(role_as_written(str(value))) if value else None


def person_matches(expected: dict, got: dict) -> bool:
    """By name when the label names the person (titles aside), else by role as written or normalised."""
    if expected.get("name"):
        return _name(expected["name"]) == _name(got.get("name"))
    roles = {_role(expected.get("role")), _role(expected.get("role_normalised"))} - {None}
    return not got.get("name") and bool({_role(got.get("role")), _role(got.get("written"))} & roles)


def same_person(expected: dict, person: Candidate) -> bool:
    """Whether a candidate is a labelled decision maker: as `eval-notes` compares them, or, both unnamed, when one
    role as written holds the other ("comitato" for "il comitato di direzione"): the judge learns who decides,
    not how far the rules' role reaches."""
    if person_matches(expected, {"name": person.name, "role": person.role, "written": person.written}):
        return True
    if expected.get("name") or person.name:
        return False
    labelled = {_low(expected.get("role")), _low(expected.get("role_normalised"))} - {None}
    read = {_low(person.role), _low(person.written)} - {None}
    return any(one in other or other in one for one in read for other in labelled)
