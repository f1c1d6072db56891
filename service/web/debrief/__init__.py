"""The rep's debrief form at /debrief/<token>, reached from the summary email; and what the team learns from it."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the debrief blueprint and the admins' insights page built on the debriefs."""
    from service.web.debrief.routes import bp
    from service.web.insights.routes import bp as insights

    app.register_blueprint(bp)
    # create_app has one hook for this area; the insights page reads the debriefs, so it is registered here.
    app.register_blueprint(insights)
