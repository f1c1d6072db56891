"""Admin login (Flask-Login). `admin_required` protects every admin page, insights included."""

from __future__ import annotations

from flask import Flask
from flask_login import LoginManager, login_required

login_manager = LoginManager()

# Every admin view is wrapped with this; the login page itself is the only exception.
admin_required = login_required


def init_auth(app: Flask) -> None:
    login_manager.init_app(app)
