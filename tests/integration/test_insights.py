"""/admin/insights: admins only; losses by month, reason and rep; lessons; the pipeline; wins; CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from service.models import Customer, Debrief, Outcome, OutcomeCustomer, Rep
from service.outbox.rows import new_outbound
from service.pipeline.debrief import Answers
from service.team.admins import create_admin
from service.web.insights import figures as insights

LESSONS = [
    "Bring the ROI figures to the first meeting, not the second.",
    "Ask early who else signs off: the CFO decided in the end.",
    "=HYPERLINK(\"http://evil.example\") should never run in a spreadsheet",
    "Our ROI figures were too generic for a small shop.",
    "Ask early who else signs off; we met the owner too late.",
    "Shorter demo, more questions about their day.",
]
CAUSES = [("external", ("budget",)), ("internal", ("unconvinced",)), ("external", ("timing", "consult")),
          ("internal", ("relationship",)), ("unknown", ("price",))]


def seed_history(engine, settings, now: datetime) -> dict:
    """Ten months of losses (19) across reps, half debriefed, upcoming recontacts, one win after a recontact."""
    with Session(engine, expire_on_commit=False) as session:
        reps = list(session.exec(select(Rep).order_by(Rep.id)))
        for n in range(18):
            _loss(session, settings, reps[n % len(reps)], n, now)
        _win_after_recontact(session, settings, reps[1], now)
        session.commit()
    return {"losses": 19, "upcoming": 8}


def _loss(session, settings, rep: Rep, n: int, now: datetime) -> Outcome:
    cause, reasons = CAUSES[n % len(CAUSES)]
    customer = Customer(email=f"buyer{n}@client{n}.example", name=f"Buyer {n} Client{n}")
    outcome = Outcome(rep_id=rep.id, outcome="lost", cause=cause, reasons=list(reasons),
                      meeting_at=now - timedelta(days=3 + n * 17), meeting_subject=f"Meeting {n}")
    session.add_all([customer, outcome])
    session.flush()
    session.add(OutcomeCustomer(outcome_id=outcome.id, customer_id=customer.id))
    if n % 2 == 0:
        answers = Answers(ours=("needs",) if n % 4 == 0 else (), theirs=("budget",), plan="stay_in_touch",
                          lesson=LESSONS[(n // 2) % len(LESSONS)])
        session.add(Debrief(outcome_id=outcome.id, rep_id=rep.id, answers=answers.to_json(), plan=answers.plan,
                            lesson=answers.lesson, submitted_at=outcome.meeting_at + timedelta(hours=20)))
        outcome.debrief_submitted_at = outcome.meeting_at + timedelta(hours=20)
    if n < 8:
        session.add(new_outbound(settings, kind="recontact", rep=rep, to_address=customer.email, to_name=customer.name,
                                 due_at=now + timedelta(days=4 + n * 9), outcome_id=outcome.id, language="en",
                                 customer_id=customer.id, variant=("consult", "budget", "default", "timing")[n % 4]))
    return outcome


def _win_after_recontact(session, settings, rep: Rep, now: datetime) -> None:
    """Lost in spring, recontacted in the autumn, won three weeks later."""
    lost = _loss(session, settings, rep, 40, now)
    lost.meeting_at = now - timedelta(days=150)
    customer = session.exec(select(Customer).where(Customer.email == "buyer40@client40.example")).one()
    recontact = new_outbound(settings, kind="recontact", rep=rep, to_address=customer.email, to_name=customer.name,
                             due_at=now - timedelta(days=30), outcome_id=lost.id, language="en",
                             customer_id=customer.id, variant="budget")
    recontact.status, recontact.sent_at = "sent", now - timedelta(days=30)
    won = Outcome(rep_id=rep.id, outcome="won", meeting_at=now - timedelta(days=9), meeting_subject="Signed")
    session.add_all([recontact, won])
    session.flush()
    session.add(OutcomeCustomer(outcome_id=won.id, customer_id=customer.id))


@pytest.fixture
def history(engine, settings, reps):
    return seed_history(engine, settings, datetime.now(UTC))


def login(client, engine) -> None:
    """Log in through the admin login form, as an admin would."""
    create_admin(engine, "boss@acme.example", "a long enough password")
    page = client.get("/admin/login")
    csrf = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1).decode()
    response = client.post("/admin/login", data={"csrf_token": csrf, "email": "boss@acme.example",
                                                 "password": "a long enough password"})
    assert response.status_code in (302, 303), response.data[:500]


def test_only_admins_see_the_insights_and_the_exports(client, history):
    for url in ("/admin/insights/", "/admin/insights/losses.csv"):
        response = client.get(url)
        assert response.status_code in (302, 401, 403)
        assert b"Buyer" not in response.data
        if response.status_code == 302:
            assert "/admin/login" in response.headers["Location"]


def test_the_page_draws_every_chart_on_the_server(client, engine, history):
    login(client, engine)
    response = client.get("/admin/insights/")
    assert response.status_code == 200
    html = response.data.decode()
    assert html.count('<svg class="kw-chart" role="img"') == 4
    for heading in ("Lost outcomes per month", "Why we lost", "Per rep", "Recontacts coming up",
                    "Recontacts that turned into a win", "Lessons that come back"):
        assert heading in html
    assert "<script" not in html and "http://" not in html.split("<main", 1)[1].split("Download CSV")[0]
    assert "roi figures" in html and "ask early" in html  # lessons that came back
    assert "Buyer 40 Client40" in html and "won 21 days after the recontact" in html
    assert re.search(r"<strong>19</strong><span>lost outcomes</span>", html)


def test_the_period_can_be_chosen_and_junk_falls_back_to_a_year(client, engine, history):
    login(client, engine)
    short = client.get("/admin/insights/?months=3").data.decode()
    assert "The last 3 months" in short and re.search(r"<strong>(\d+)</strong><span>lost outcomes", short)
    assert int(re.search(r"<strong>(\d+)</strong><span>lost outcomes", short).group(1)) < 19
    assert "The last 12 months" in client.get("/admin/insights/?months=7; drop table").data.decode()


def test_the_csv_exports_hold_the_rows_behind_the_charts(client, engine, history):
    login(client, engine)
    response = client.get("/admin/insights/losses.csv?months=24")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.data.decode())))
    assert len(rows) == 19 and {r["cause"] for r in rows} <= set(insights.CAUSES)
    assert any(r["lesson"].startswith("'=HYPERLINK") for r in rows)  # defused for spreadsheets
    assert any(r["won_later_on"] for r in rows) and any(r["source"] == "debrief" for r in rows)
    pipeline = list(csv.DictReader(io.StringIO(client.get("/admin/insights/pipeline.csv").data.decode())))
    assert len(pipeline) == 8 and pipeline[0]["due_at_utc"] < pipeline[-1]["due_at_utc"]
    wins = list(csv.DictReader(io.StringIO(client.get("/admin/insights/wins.csv").data.decode())))
    assert [(w["customer"], w["days"]) for w in wins] == [("Buyer 40 Client40", "21")]
    assert client.get("/admin/insights/secrets.csv").status_code == 404


def test_the_insights_are_in_the_admin_menu_and_frame(client, engine, history):
    login(client, engine)
    assert 'href="/admin/insights/"' in client.get("/admin/").text  # every admin page links to it
    html = client.get("/admin/insights/").data.decode()
    menu = html.split('aria-label="Admin sections"', 1)[1].split("</nav>", 1)[0]
    assert '<a href="/admin/insights/" aria-current="page">Insights</a>' in menu
    assert 'href="/admin/templates/"' in menu and "boss@acme.example" in menu and "Log out" in menu
    assert '<body class="admin"' in html and 'class="kw-insights"' in html
    for name in ("losses", "pipeline", "wins"):  # the CSV links still lead to their files
        link = re.search(rf'href="(/admin/insights/{name}\.csv\?months=12)"', html).group(1)
        assert client.get(link).mimetype == "text/csv"


def test_an_empty_database_still_gives_a_calm_page(client, engine, reps):
    login(client, engine)
    html = client.get("/admin/insights/").data.decode()
    assert "No lost outcomes in this period." in html and "No recontacts scheduled." in html


# ---------------------------------------------------------------------------------------------------- pure parts


def test_cause_and_reasons_come_from_the_debrief_when_there_is_one(engine, settings, history):
    with Session(engine) as session:
        found = insights.gather(session, months=24)
    debriefed = [loss for loss in found.losses if loss.source == "debrief"]
    assert debriefed and all("budget" in loss.reasons for loss in debriefed)
    assert {loss.cause for loss in debriefed} == {"external", "both"}
    assert dict(insights.by_reason(found))["Budget"] >= len(debriefed)


def test_month_labels_cross_the_year():
    assert insights.month_labels(datetime(2027, 2, 10).date(), 4) == ["2026-11", "2026-12", "2027-01", "2027-02"]


def test_recurring_lessons_prefer_the_phrase_to_its_words():
    found = insights.themes(LESSONS)
    terms = [theme.term for theme in found]
    assert terms[:2] == ["ask early", "roi figures"] or terms[:2] == ["roi figures", "ask early"]
    assert "roi" not in terms and "figures" not in terms
    assert all(theme.count >= 2 and len(theme.examples) >= 2 for theme in found)
    assert insights.themes(["One lesson only"]) == []


def test_charts_escape_what_people_typed():
    chart = insights.bar_chart([("<script>alert(1)</script>", [2, 1])],
                               [insights.Series("A", "#000", []), insights.Series("B", "#111", [])], "T <b>")
    assert "<script>" not in chart and "&lt;script&gt;" in chart and "T &lt;b&gt;" in chart
    columns = insights.column_chart(["Jan", "Feb"], [insights.Series("x", "#000", [0, 3])], "Months")
    assert columns.count("<rect") == 1 and ">3</text>" in columns


def test_csv_cells_that_look_like_formulas_are_defused():
    text = insights.csv_text(["a", "b", "c"], [["=1+1", -3, "+cmd"], ["@x", None, "plain"]])
    assert text.splitlines() == ["a,b,c", "'=1+1,-3,'+cmd", "'@x,,plain"]
