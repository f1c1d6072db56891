"""`/`: what Keepwarm is, the address reps BCC, and where to go next. Public: no secret and no count on it."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from service.web import no_store

bp = Blueprint("landing", __name__)
# As the other public pages: never cached (the address it shows is a setting, and may change).
bp.after_request(no_store)


@bp.get("/")
def index():
    return render_template("landing.html", intake_address=current_app.config["KEEPWARM"].settings.intake_address)
