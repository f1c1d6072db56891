"""The rep's debrief form at /debrief/<token>, reached from the summary email."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the debrief blueprint."""
