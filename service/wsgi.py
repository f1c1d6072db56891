"""The WSGI entry point for gunicorn: `gunicorn 'service.wsgi:app'` (settings from KEEPWARM_* variables)."""

from service import create_app
from service.settings import check_secret_key, load_settings

_settings = load_settings()
app = create_app(_settings)
check_secret_key(app.config["KEEPWARM"].settings)
