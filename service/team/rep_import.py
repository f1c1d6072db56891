"""Reps in bulk from a CSV file: every row is checked against the database and the rest of the file first, then
the good rows are written in one transaction (a dry run writes nothing); bad rows are reported by row number.

Columns (header names are case-insensitive; only `email` is required): email, name, time zone (or timezone, tz),
aliases (several, separated by `;`, `,` or spaces), language (en, it). An empty cell, or a column left out, keeps
what an existing rep has; a new rep needs a name, and gets the organisation's time zone when none is given.
Aliases are added, never removed or taken from another rep. An import never enables or disables anyone.
Rows are numbered as a spreadsheet numbers them: the header is row 1.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from service.audit import record
from service.db import session_scope
from service.models import Rep, RepAddress
from service.team.reps import (
    NAME_LENGTH,
    _address,
    _check_zone,
    check_language,
    check_name,
    check_not_intake,
    upsert_rep,
)

COLUMNS = {"email": "email", "name": "name", "timezone": "timezone", "tz": "timezone", "zone": "timezone",
           "aliases": "aliases", "alias": "aliases", "language": "language", "lang": "language"}
MAX_ROWS = 20000
_ALIAS_SEPARATORS = re.compile(r"[;,\s]+")
_RACE = "nothing was written: another change to the same reps landed meanwhile; import the file again"


class ImportRefused(ValueError):
    """The whole file cannot be read (not UTF-8, no header, no email column…): no row is looked at."""


@dataclass(frozen=True)
class RowVerdict:
    """What the import makes of one row: new, updated (with what changes), unchanged, or error."""

    row: int
    email: str
    status: str
    changes: tuple[str, ...] = ()
    error: str = ""


@dataclass
class ImportReport:
    rows: list[RowVerdict]
    dry_run: bool
    written: int = 0  # reps created or updated (0 in a dry run)

    def count(self, status: str) -> int:
        return sum(1 for verdict in self.rows if verdict.status == status)

    @property
    def errors(self) -> list[RowVerdict]:
        return [verdict for verdict in self.rows if verdict.status == "error"]

    def summary(self) -> str:
        counts = ", ".join(f"{self.count(s)} {s}" for s in ("new", "updated", "unchanged"))
        bad = f"; {len(self.errors)} rows refused (rows {', '.join(str(v.row) for v in self.errors)})" \
            if self.errors else ""
        done = "dry run: nothing written" if self.dry_run else f"{self.written} reps written"
        return f"{counts}{bad}; {done}"


@dataclass
class _Row:
    row: int
    email: str
    name: str = ""
    timezone: str = ""
    language: str = ""
    aliases: tuple[str, ...] = ()
    errors: list[str] = field(default_factory=list)


@dataclass
class _Known:
    """The reps and alternative addresses as they stand, and what earlier rows of the file claimed."""

    reps: dict[str, Rep]
    alias_owner: dict[str, str]  # alias → its rep's email
    file_emails: dict[str, int] = field(default_factory=dict)  # email → row
    file_aliases: dict[str, tuple[int, str]] = field(default_factory=dict)  # alias → (row, its rep's email)
    intake_address: str = ""  # Keepwarm's own: never a rep's address nor an alternative one


def read_rows(data: bytes) -> list[_Row]:
    """The file's data rows (blank lines skipped, still counted), or ImportRefused."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused("the file is not UTF-8 text: save it as “CSV UTF-8”") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ImportRefused("the file is empty: the first row must name the columns (email, name, …)")
    records = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(lines[0]))
    rows = []
    try:  # csv.Error: a cell past the csv module's size limit (131,072 characters), an unclosed quote in strict mode
        columns = _columns(next(records))
        for number, cells in enumerate(records, start=2):
            if any(cell.strip() for cell in cells):
                rows.append(_row(number, columns, cells))
            if len(rows) > MAX_ROWS:
                raise ImportRefused(f"more than {MAX_ROWS} rows: split the file")
    except csv.Error as error:
        raise ImportRefused(f"the file cannot be read as CSV near row {records.line_num}: {error}") from None
    return rows


def _delimiter(header: str) -> str:
    """A comma, or the semicolon or tab of a spreadsheet saved in a locale that uses them."""
    return max((",", ";", "\t"), key=header.count) if any(c in header for c in ";\t") else ","


def _columns(header: list[str]) -> list[str | None]:
    names = [COLUMNS.get(re.sub(r"[\s_-]+", "", cell.strip().lower())) for cell in header]
    unknown = [cell for cell, name in zip(header, names, strict=True) if name is None and cell.strip()]
    if unknown:
        raise ImportRefused(f"unknown columns {', '.join(map(repr, unknown))}: use email, name, time zone, aliases, "
                            "language")
    if "email" not in names:
        raise ImportRefused("no email column: the first row must name the columns (email, name, …)")
    if len([n for n in names if n]) != len({n for n in names if n}):
        raise ImportRefused("a column is named twice")
    return names


def _row(number: int, columns: list[str | None], cells: list[str]) -> _Row:
    values = {name: cell.strip() for name, cell in zip(columns, cells, strict=False) if name}
    row = _Row(number, email=values.get("email", ""), name=values.get("name", ""),
               timezone=values.get("timezone", ""), language=values.get("language", "").lower())
    if len(cells) > len(columns) and any(cell.strip() for cell in cells[len(columns):]):
        row.errors.append("more cells than columns (a separator inside a value must be quoted)")
    row.aliases = tuple(a for a in _ALIAS_SEPARATORS.split(values.get("aliases", "")) if a)
    return row


def check_rows(session: Session, rows: list[_Row], *, intake_address: str = "") -> list[RowVerdict]:
    """Each row's verdict against the database and the rows before it (and never Keepwarm's own address)."""
    known = _known(session)
    known.intake_address = intake_address
    return [_verdict(row, known) for row in rows]


def _known(session: Session) -> _Known:
    reps = {rep.email: rep for rep in session.exec(select(Rep))}
    by_id = {rep.id: rep.email for rep in reps.values()}
    return _Known(reps, {a.email: by_id[a.rep_id] for a in session.exec(select(RepAddress)) if a.rep_id in by_id})


def _verdict(row: _Row, known: _Known) -> RowVerdict:
    errors = list(row.errors)
    email = _checked(errors, _address, row.email) if row.email else None
    if not row.email:
        errors.append("no email address")
    existing = known.reps.get(email) if email else None
    if email:
        _check_email(errors, email, known)
    _check_values(errors, row, existing)
    aliases = [a for a in (_checked(errors, _address, alias) for alias in row.aliases) if a and a != email]
    for alias in aliases:
        _check_alias(errors, alias, email, known)
    if known.intake_address:
        for address in dict.fromkeys(a for a in (email, *aliases) if a):
            _checked(errors, lambda a: check_not_intake(a, known.intake_address), address)
    if errors:
        return RowVerdict(row.row, email or row.email, "error", error="; ".join(errors))
    _claim(known, row.row, email, aliases)
    row.email, row.aliases = email, tuple(dict.fromkeys(aliases))  # as they will be written
    changes = _changes(row, existing, aliases, known)
    status = "new" if existing is None else "updated" if changes else "unchanged"
    return RowVerdict(row.row, email, status, tuple(changes))


def _checked(errors: list[str], check, value: str):
    """check(value), or None with its ValueError's words added to `errors`."""
    try:
        return check(value)
    except ValueError as error:
        errors.append(str(error))
        return None


def _check_email(errors: list[str], email: str, known: _Known) -> None:
    if email in known.file_emails:
        errors.append(f"{email} is also on row {known.file_emails[email]}")
    owner = known.alias_owner.get(email)
    if owner and owner != email:
        errors.append(f"{email} is an alternative address of {owner}")
    claimed = known.file_aliases.get(email)
    if claimed and claimed[1] != email:
        errors.append(f"{email} is an alternative address of {claimed[1]} on row {claimed[0]}")


def _check_values(errors: list[str], row: _Row, existing: Rep | None) -> None:
    if existing is None and not row.name:
        errors.append("a new rep needs a name")
    if len(row.name) > NAME_LENGTH:
        errors.append(f"the name is longer than {NAME_LENGTH} characters")
    if row.name:
        _checked(errors, check_name, row.name)
    if row.timezone:
        _checked(errors, _check_zone, row.timezone)
    if row.language:
        _checked(errors, check_language, row.language)


def _check_alias(errors: list[str], alias: str, email: str, known: _Known) -> None:
    owner = known.alias_owner.get(alias)
    if owner and owner != email:
        errors.append(f"{alias} already belongs to {owner}")
    elif alias in known.reps and alias != email:
        errors.append(f"{alias} is the address of the rep {alias}")
    claimed = known.file_aliases.get(alias)
    if claimed and claimed[1] not in (email, owner):
        errors.append(f"{alias} is claimed by {claimed[1]} on row {claimed[0]}")
    if alias in known.file_emails and alias != email:
        errors.append(f"{alias} is the address of the rep on row {known.file_emails[alias]}")


def _claim(known: _Known, number: int, email: str, aliases: list[str]) -> None:
    known.file_emails[email] = number
    for alias in aliases:
        known.file_aliases.setdefault(alias, (number, email))


def _changes(row: _Row, existing: Rep | None, aliases: list[str], known: _Known) -> list[str]:
    """What the row changes, in words ("time zone UTC → Europe/Rome", "+ alias a@b")."""
    if existing is None:
        return []
    changes = [f"{what} {old or '—'} → {new}" for what, old, new in (
        ("name", existing.name, row.name), ("time zone", existing.timezone, row.timezone),
        ("language", existing.language, row.language)) if new and new != old]
    return changes + [f"+ alias {alias}" for alias in aliases if known.alias_owner.get(alias) != existing.email]


def import_reps(engine: Engine, data: bytes, *, dry_run: bool, default_timezone: str, actor: str,
                admin_id: int | None = None, intake_address: str = "") -> ImportReport:
    """Check every row, then (unless a dry run) write the new and updated ones in one transaction with one audit
    entry. ImportRefused for a file that cannot be read; a database refusal (another admin saved the same address
    meanwhile) rolls the whole import back and is raised. A row naming `intake_address` (Keepwarm's own, or a plus
    variant) as a rep's address or an alternative one is refused."""
    rows = read_rows(data)
    with session_scope(engine) as session:
        verdicts = check_rows(session, rows, intake_address=intake_address)
        report = ImportReport(verdicts, dry_run=dry_run)
        if dry_run:
            return report
        report.written = _write(session, rows, verdicts, default_timezone, intake_address)
        record(session, "rep.import", admin_id=admin_id, actor=actor, target=f"{len(rows)} rows",
               detail={"new": [v.email for v in verdicts if v.status == "new"],
                       "updated": [v.email for v in verdicts if v.status == "updated"],
                       "refused": [{"row": v.row, "error": v.error} for v in report.errors]})
        return report


def _write(session: Session, rows: list[_Row], verdicts: list[RowVerdict], default_timezone: str,
           intake_address: str = "") -> int:
    """The new and updated rows, in the caller's transaction; a refusal raises ImportRefused (all rolled back)."""
    by_row = {row.row: row for row in rows}
    writing = [by_row[v.row] for v in verdicts if v.status in ("new", "updated")]
    try:
        for row in writing:
            upsert_rep(session, row.email, name=row.name or None, timezone=row.timezone or None,
                       aliases=row.aliases, language=row.language or None, default_timezone=default_timezone,
                       intake_address=intake_address or None)
        session.flush()
    except IntegrityError:
        raise ImportRefused(_RACE) from None
    except ValueError as error:  # upsert_rep's own checks, refusing what another change made true meanwhile
        raise ImportRefused(f"{_RACE} ({error})") from None
    return len(writing)
