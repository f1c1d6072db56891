"""The migrations build exactly the tables the models describe (nothing left for autogenerate to find)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import service.models  # noqa: F401
from service.db import make_engine


def test_migrations_match_the_models(migrated_template):
    engine = make_engine(migrated_template)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()  # PostgreSQL copies this database for every test: nobody may stay connected to it
    assert diff == []
