"""The engine, sessions and migrations."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# PostgreSQL refuses NUL in text, and no driver encodes a lone surrogate (a UTF-7 part or header can hold one).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Errors that say the database is away (a restart, a network cut), not that the data or the code is wrong.
UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError)


def make_engine(url: str) -> Engine:
    """An engine with SQLite made safe for several processes (WAL, busy timeout, foreign keys)."""
    if url.startswith("sqlite"):
        _ensure_sqlite_folder(url)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        sa.event.listen(engine, "connect", _tune_sqlite)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _ensure_sqlite_folder(url: str) -> None:
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _tune_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def storable_text(text: str) -> str:
    """Text every database takes: NUL removed, lone surrogates replaced by U+FFFD."""
    if (text.isascii() and "\x00" not in text) or not _UNSTORABLE.search(text):  # the common cases, copying nothing
        return text
    return _UNSTORABLE.sub(lambda m: "" if m.group(0) == "\x00" else "\ufffd", text)


def storable(value):
    """`value` with storable_text applied to every string inside it (lists, tuples and dicts walked)."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(storable(v) for v in value)
    return value


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Apply every migration (the `keepwarm db upgrade` command)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")
    logger.info("database at head: %s", sa.engine.make_url(url).render_as_string(hide_password=True))
