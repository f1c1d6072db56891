"""Reps in bulk from a CSV file: checked row by row against the database and the file, a dry run that writes
nothing, the good rows written in one transaction, the bad ones reported by row number (the header is row 1)."""
# ruff: noqa: F811  (the admin fixtures are imported from test_admin and named as test parameters)

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from html import unescape

import pytest
from sqlmodel import Session, func, select

from service.models import AuditEntry, Rep, RepAddress
from service.team.feeds import FeedRefused, rep_for_feed
from service.team.rep_import import ImportRefused, import_reps
from service.tokens import Signer
from tests.integration.test_admin import _fresh_throttles, admin, csrf_token, logged_in  # noqa: F401
from tests.integration.test_cli import keepwarm  # noqa: F401  (a fixture)

ZONES = ("Europe/Rome", "Europe/London", "America/New_York", "Asia/Tokyo")
# Data row index → (column, bad value): what each of the five bad rows of the 500 gets wrong.
BAD = {40: ("email", "rep040-at-bulk.example"), 141: ("time zone", "Mars/Olympus"), 242: ("language", "fr"),
       343: ("email", "rep010@bulk.example"),  # the address of row 12 again
       444: ("aliases", "anna@acme.example")}  # Anna Bianchi's alternative address (tests/conftest.py)
BAD_ROWS = [index + 2 for index in BAD]  # the header is row 1
WORDS = {42: "not an email address", 143: "not an IANA time zone", 244: "not a language", 345: "also on row 12",
         446: "already belongs to anna.bianchi@acme.example"}


def team_csv(count: int = 500, bad: dict | None = None) -> bytes:
    """`count` new reps, some with aliases and a language, with BAD's mistakes."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Email", "Name", "Time zone", "Aliases", "Language"])
    for i in range(count):
        row = {"email": f"rep{i:03}@bulk.example", "name": f"Rep {i}", "time zone": ZONES[i % 4],
               "aliases": f"r{i}@bulk.example; rep.{i}@mail.bulk.example" if i % 3 == 0 else "",
               "language": ("en", "it", "")[i % 3]}
        column, value = (bad or {}).get(i, (None, None))
        if column:
            row[column] = value
        writer.writerow(row.values())
    return out.getvalue().encode()


def _count(engine, model=Rep) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def _import(engine, data: bytes, *, dry_run: bool = False):
    return import_reps(engine, data, dry_run=dry_run, default_timezone="UTC", actor="tests")


def test_500_rows_with_5_bad_a_dry_run_writes_nothing_and_the_import_writes_the_495(engine, reps):
    data, before = team_csv(bad=BAD), _count(engine)
    dry = _import(engine, data, dry_run=True)
    assert [v.row for v in dry.errors] == BAD_ROWS and dry.count("new") == 495
    assert {v.row: v.error for v in dry.errors}.keys() == WORDS.keys()
    assert all(WORDS[v.row] in v.error for v in dry.errors)
    assert (_count(engine), _count(engine, AuditEntry), dry.written) == (before, 0, 0)
    done = _import(engine, data)
    assert [v.row for v in done.errors] == BAD_ROWS and done.written == 495
    assert _count(engine) == before + 495
    with Session(engine) as session:
        rep = session.exec(select(Rep).where(Rep.email == "rep003@bulk.example")).one()
        assert (rep.name, rep.timezone, rep.language, rep.active) == ("Rep 3", "Asia/Tokyo", "en", True)
        assert sorted(session.exec(select(RepAddress.email).where(RepAddress.rep_id == rep.id))) == [
            "r3@bulk.example", "rep.3@mail.bulk.example"]
        assert session.exec(select(Rep).where(Rep.email == "rep040@bulk.example")).first() is None
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "rep.import")).one()
        assert len(entry.detail["new"]) == 495 and [r["row"] for r in entry.detail["refused"]] == BAD_ROWS
    again = _import(engine, data, dry_run=True)
    assert again.count("unchanged") == 495 and again.count("new") == 0  # importing twice changes nothing


def test_existing_reps_are_updated_or_unchanged_with_what_changes(engine, reps):
    data = (b"email,name,timezone,aliases,language\n"
            b"tom.baker@acme.example,Tom Baker,Europe/London,,\n"  # as he is
            b"LUCA.MORETTI@acme.example,,Europe/Berlin,luca@acme.example,it\n"  # empty name: kept
            b"anna.bianchi@acme.example,Anna Bianchi,Europe/Rome,anna@acme.example,\n")  # her own alias
    report = _import(engine, data)
    assert [(v.row, v.status) for v in report.rows] == [(2, "unchanged"), (3, "updated"), (4, "unchanged")]
    assert report.rows[1].changes == ("time zone Europe/Rome → Europe/Berlin", "language — → it",
                                      "+ alias luca@acme.example")
    with Session(engine) as session:
        luca = session.exec(select(Rep).where(Rep.email == "luca.moretti@acme.example")).one()
        assert (luca.name, luca.timezone, luca.language) == ("Luca Moretti", "Europe/Berlin", "it")


@pytest.mark.parametrize(("line", "words"), [
    ("new@bulk.example,,UTC,,", "a new rep needs a name"),
    ("anna@acme.example,Anna B,UTC,,", "anna@acme.example is an alternative address of anna.bianchi@acme.example"),
    ("new@bulk.example,New,UTC,tom.baker@acme.example,", "is the address of the rep tom.baker@acme.example"),
    ("new@bulk.example,New,UTC,first@bulk.example,", "first@bulk.example is the address of the rep on row 2"),
    ("new@bulk.example,New,UTC,,EN-GB", "not a language"),
    (",New,UTC,,", "no email address"),
    ("new@bulk.example,New,UTC,,,extra", "more cells than columns"),
])
def test_each_bad_row_is_named_with_its_reason(engine, reps, line, words):
    data = f"email,name,timezone,aliases,language\nfirst@bulk.example,First,UTC,,\n{line}\n".encode()
    report = _import(engine, data)
    assert [(v.row, v.status) for v in report.rows] == [(2, "new"), (3, "error")]
    assert words in report.rows[1].error


def test_an_alias_claimed_by_two_rows_goes_to_the_first(engine, reps):
    data = b"email,name,aliases\nnew1@bulk.example,N,shared@bulk.example\nnew2@bulk.example,N,shared@bulk.example\n"
    report = _import(engine, data, dry_run=True)
    assert report.rows[1].status == "error" and "claimed by new1@bulk.example on row 2" in report.rows[1].error


def test_a_spreadsheet_s_semicolon_file_with_a_bom_and_blank_lines_is_read(engine, reps):
    data = "\ufeffE-mail;Name;Time zone;Aliases\n\nmia@bulk.example;Mia;Europe/Rome;\"m1@bulk.example;m2@bulk.example\"\n"
    report = _import(engine, data.encode("utf-8"))
    assert [(v.row, v.status, v.email) for v in report.rows] == [(3, "new", "mia@bulk.example")]
    with Session(engine) as session:
        assert _count(engine, RepAddress) == 1 + 2 and session.exec(
            select(Rep.timezone).where(Rep.email == "mia@bulk.example")).one() == "Europe/Rome"


@pytest.mark.parametrize(("data", "words"), [
    ("Email,Name\nfrançois@bulk.example,François\n".encode("latin-1"), "not UTF-8"),
    (b"", "empty"),
    (b"name,timezone\nX,UTC\n", "no email column"),
    (b"email,name,phone\nx@bulk.example,X,123\n", "unknown columns 'phone'"),
])
def test_a_file_that_cannot_be_read_is_refused_whole(engine, reps, data, words):
    with pytest.raises(ImportRefused, match=words):
        _import(engine, data)
    assert _count(engine) == len(reps)


def test_a_refusal_while_writing_rolls_back_every_row(engine, reps, monkeypatch):
    """Another change landing between the check and the write (an alias taken meanwhile): nothing half-written."""
    from service.team import rep_import

    real = rep_import.upsert_rep

    def taken_on_the_third(session, email, **values):
        if email == "rep002@bulk.example":
            raise ValueError("r2@bulk.example already belongs to another rep")
        return real(session, email, **values)

    monkeypatch.setattr(rep_import, "upsert_rep", taken_on_the_third)
    with pytest.raises(ImportRefused, match="nothing was written"):
        _import(engine, team_csv(10))
    assert (_count(engine), _count(engine, AuditEntry)) == (len(reps), 0)


# ---------------------------------------------------------------------------------------------------- the CLI


@pytest.mark.slow
def test_the_cli_imports_500_rows_and_names_the_5_bad_ones(keepwarm, tmp_path, engine):
    path = tmp_path / "team.csv"
    path.write_bytes(team_csv(bad=BAD))
    before = _count(engine)
    dry = keepwarm("reps", "import", str(path), "--dry-run", check=False)
    assert dry.returncode == 1 and _count(engine) == before
    assert [int(n) for n in re.findall(r"^row (\d+) +error", dry.stdout, re.M)] == BAD_ROWS
    assert "495 new" in dry.stdout and "dry run: nothing written" in dry.stdout
    done = keepwarm("reps", "import", str(path), "--json", check=False)
    verdicts = json.loads(done.stdout)
    assert done.returncode == 1 and [v["row"] for v in verdicts if v["status"] == "error"] == BAD_ROWS
    assert _count(engine) == before + 495 and "495 reps written" in done.stderr
    clean = tmp_path / "clean.csv"
    clean.write_bytes(team_csv(3))
    assert "3 unchanged" in keepwarm("reps", "import", str(clean)).stdout


@pytest.mark.slow
def test_the_cli_prints_the_feed_url_and_revokes_it(keepwarm, settings, engine):
    # The command signs with its own environment's secret (test_cli's keepwarm fixture), as the web app beside it.
    signer = Signer(replace(settings, secret_key="test-secret-0123456789abcdef"))
    url = keepwarm("reps", "calendar", "Tom.Baker@acme.example").stdout.strip()
    token = url.rsplit("/calendar/", 1)[1].removesuffix(".ics")
    assert url.startswith("http") and url.endswith(".ics")
    with Session(engine) as session:
        assert rep_for_feed(session, signer, token).email == "tom.baker@acme.example"
    revoked = keepwarm("reps", "calendar", "tom.baker@acme.example", "--revoke")
    new = revoked.stdout.strip().rsplit("/calendar/", 1)[1].removesuffix(".ics")
    assert new != token and "revoked" in revoked.stderr
    with Session(engine) as session:
        with pytest.raises(FeedRefused) as refused:
            rep_for_feed(session, signer, token)
        assert refused.value.status == 410 and rep_for_feed(session, signer, new).email == "tom.baker@acme.example"
    assert keepwarm("reps", "calendar", "nobody@acme.example", check=False).returncode == 1


# ---------------------------------------------------------------------------------------------------- admin upload


def _upload(client, data: bytes, token: str, name: str = "team.csv"):
    return client.post("/admin/reps/import", data={"csrf_token": token, "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_the_admin_previews_then_confirms_and_only_the_good_rows_are_written(logged_in, engine):
    before, data = _count(engine), team_csv(40, bad={5: ("time zone", "Nowhere/City")})
    token = csrf_token(logged_in, "/admin/reps")
    preview = _upload(logged_in, data, token)
    assert preview.status_code == 200 and _count(engine) == before
    text = " ".join(re.sub(r"<[^>]+>", "", unescape(preview.text)).split())
    assert "39 new" in text and "1 row refused (row 7)" in text and "not an IANA time zone" in text
    carried = re.search(r'name="csv_text"[^>]*value="([^"]*)"', preview.text) or \
        re.search(r'value="([^"]*)"[^>]*name="csv_text"', preview.text)
    confirm = {"csrf_token": token, "csv_text": unescape(carried.group(1))}
    assert logged_in.post("/admin/reps/import/confirm", data={"csv_text": confirm["csv_text"]}).status_code in (
        400, 422) and _count(engine) == before  # no CSRF token: nothing written
    done = logged_in.post("/admin/reps/import/confirm", data=confirm)
    assert done.status_code == 200 and "Written:" in done.text and _count(engine) == before + 39
    with Session(engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "rep.import")).one()
        assert entry.actor == "ada@acme.example" and len(entry.detail["new"]) == 39


def test_the_upload_needs_csrf_a_file_and_a_reasonable_size(logged_in, engine):
    before = _count(engine)
    token = csrf_token(logged_in, "/admin/reps")
    assert _upload(logged_in, team_csv(3), "wrong-token").status_code in (400, 422)
    assert logged_in.post("/admin/reps/import", data={"csrf_token": token},
                          content_type="multipart/form-data").status_code == 422
    too_big = _upload(logged_in, b"email,name\n" + b"x@bulk.example,X\n" * 20000, token)
    assert too_big.status_code == 422 and "larger than 256 kB" in unescape(too_big.text)
    unreadable = _upload(logged_in, b"phone\n123\n", token)
    assert unreadable.status_code == 422 and "unknown columns" in unescape(unreadable.text)
    assert _count(engine) == before


def test_the_reps_page_offers_the_upload_and_a_language(logged_in):
    page = logged_in.get("/admin/reps")
    assert 'enctype="multipart/form-data"' in page.text and 'name="file"' in page.text
    assert 'name="language"' in page.text


# ---------------------------------------------------------------------------------------------------- security review


@pytest.mark.parametrize("line", [
    "followup@acme.example,Loop,UTC,,",  # the intake address itself
    "FOLLOWUP+lost@ACME.example,Loop,UTC,,",  # a plus variant, in capitals: intake reads it as its own
    "new@bulk.example,New,UTC,followup+x@acme.example,",  # as an alternative address
])
def test_keepwarm_s_own_address_never_becomes_a_rep_or_an_alias(engine, reps, settings, line):
    before, aliases = _count(engine), _count(engine, RepAddress)
    data = f"email,name,timezone,aliases,language\n{line}\n".encode()
    report = import_reps(engine, data, dry_run=False, default_timezone="UTC", actor="tests",
                         intake_address=settings.intake_address)
    assert [v.status for v in report.rows] == ["error"] and "Keepwarm's own address" in report.rows[0].error
    assert (_count(engine), _count(engine, RepAddress), report.written) == (before, aliases, 0)


def test_the_admin_upload_refuses_the_intake_address_too(logged_in, engine, settings):
    before = _count(engine)
    token = csrf_token(logged_in, "/admin/reps")
    preview = _upload(logged_in, f"email,name\n{settings.intake_address},Loop\n".encode(), token)
    assert preview.status_code == 200 and "Keepwarm&#39;s own address" in preview.text
    page = logged_in.post("/admin/reps", data={"csrf_token": token, "email": settings.intake_address, "name": "Loop",
                                               "timezone": "UTC", "active": "y"})
    assert page.status_code == 422 and "own address" in unescape(page.text) and _count(engine) == before


@pytest.mark.parametrize("name", ["Mallory\r\nBcc: victim@evil.example", "Mallory\rX", "Mal\x00lory",
                                  "Mal\u202eyrol", "Mal\u2028lory"])
def test_a_name_with_a_line_break_or_a_control_character_is_refused(engine, reps, name):
    """A quoted CSV cell may hold line breaks; the name goes into the From of mail sent in the rep's name."""
    out = io.StringIO()
    csv.writer(out).writerows([["email", "name"], ["new@bulk.example", name]])
    report = _import(engine, out.getvalue().encode())
    assert [v.status for v in report.rows] == ["error"] and "control character" in report.rows[0].error
    assert _count(engine) == len(reps)


def test_the_admin_form_refuses_a_name_with_a_line_break(logged_in, engine):
    token = csrf_token(logged_in, "/admin/reps")
    page = logged_in.post("/admin/reps", data={"csrf_token": token, "email": "new@bulk.example",
                                               "name": "Mallory\r\nBcc: victim@evil.example", "timezone": "UTC",
                                               "active": "y"})
    assert page.status_code == 422 and "control character" in unescape(page.text)
    with Session(engine) as session:
        assert session.exec(select(Rep).where(Rep.email == "new@bulk.example")).first() is None


def test_a_cell_past_the_csv_module_s_limit_is_refused_not_a_crash(engine, reps, logged_in):
    """csv.Error ("field larger than field limit") was not caught: a 500 on the page, a traceback in the CLI."""
    data = b"email,name\nnew@bulk.example,\"" + b"x" * 140_000 + b"\"\n"
    with pytest.raises(ImportRefused, match="cannot be read as CSV"):
        _import(engine, data)
    page = _upload(logged_in, data, csrf_token(logged_in, "/admin/reps"))
    assert page.status_code == 422 and "cannot be read as CSV" in unescape(page.text)


def test_a_huge_upload_is_refused_before_it_is_read_even_without_a_login(client):
    """CSRFProtect parses every POST's form, and Werkzeug spools an uploaded file to disk whatever its size: without
    MAX_CONTENT_LENGTH anyone could stream gigabytes to the server's temporary folder."""
    huge = b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"team.csv\"\r\n\r\n" + \
        b"x" * (5 * 1024 * 1024) + b"\r\n--x--\r\n"  # past service.MAX_REQUEST_BYTES (4 MiB); sent as is
    for path in ("/admin/login", "/admin/reps/import"):
        answer = client.post(path, data=huge, content_type="multipart/form-data; boundary=x")
        assert answer.status_code == 413
