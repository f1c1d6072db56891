"""/admin/insights: what the team learns from its losses, with charts drawn on the server and CSV exports."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template, request

from service.db import session_scope
from service.web.admin.auth import admin_required
from service.web.insights import figures as insights

bp = Blueprint("insights", __name__, url_prefix="/admin/insights")


@bp.get("/")
@admin_required
def index():
    months = _months()
    with session_scope(current_app.config["KEEPWARM"].engine) as session:
        found = insights.gather(session, months=months)
    return render_template("insights/index.html", insights=found, months=months, periods=insights.PERIODS,
                           charts=_charts(found), tables=_tables(found), causes=insights.CAUSES,
                           colors=insights.CAUSE_COLORS, labels=insights.CAUSE_LABELS, variants=insights.VARIANT_LABELS)


@bp.get("/<name>.csv")
@admin_required
def export(name: str):
    if name not in insights.EXPORTS:
        abort(404)
    with session_scope(current_app.config["KEEPWARM"].engine) as session:
        header, rows = insights.export_rows(insights.gather(session, months=_months()), name)
    filename = f"keepwarm-{name}-{_months()}m.csv"
    return Response(insights.csv_text(header, rows), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.after_request
def _private(response):
    """Customer names and lessons: never cached."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _months() -> int:
    """The period asked for, else a year (anything else is not offered, so it falls back too)."""
    months = request.args.get("months", type=int)
    return months if months in insights.PERIODS else 12


def _charts(found: insights.Insights) -> dict:
    """Every chart of the page, as SVG markup."""
    causes = [insights.Series(insights.CAUSE_LABELS[c], insights.CAUSE_COLORS[c], v)
              for c, v in insights.by_month(found).items()]
    month_names = [_month_name(m, len(found.months)) for m in found.months]
    reps = insights.by_rep(found)
    starts, weekly, _later = insights.by_week(found)
    return {
        "months": insights.column_chart(month_names, causes, "Lost outcomes per month, by cause"),
        "reasons": insights.bar_chart(insights.reason_bars(found), causes, "Lost outcomes by reason"),
        "reps": insights.bar_chart([(r.name, [r.causes[c] for c in insights.CAUSES]) for r in reps],
                                   causes, "Lost outcomes per rep, by cause",
                                   notes=[f"{r.debriefed} of {r.lost} debriefed" for r in reps]),
        "pipeline": insights.column_chart([f"{d.day}/{d.month}" for d in starts],
                                          [insights.Series("recontacts", "#3b7ea1", weekly)],
                                          "Recontacts due per week"),
    }


def _tables(found: insights.Insights) -> dict:
    """The numbers behind the charts, for the tables under them."""
    return {"months": insights.by_month(found), "reasons": insights.by_reason(found), "reps": insights.by_rep(found),
            "weeks": insights.by_week(found)}


def _month_name(label: str, count: int) -> str:
    """ "Mar" for a year or less; "Mar 26" beyond, where the same month comes twice."""
    names = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    year, month = label.split("-")
    return names[int(month) - 1] + (f" {year[2:]}" if count > 12 else "")
