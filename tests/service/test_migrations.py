"""Migrations are the only way tables are made: they must produce exactly what the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from core.db import make_engine
from core.migrate import upgrade
from core.tables import Base
from tests.service.conftest import POSTGRES, create_database, drop_database


def diff_against_models(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
            )
    finally:
        engine.dispose()


def test_postgres_migrations_match_the_models():
    name = create_database()
    try:
        url = f"{POSTGRES}/{name}"
        upgrade(url)
        assert diff_against_models(url) == []
        engine = make_engine(url)
        assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
        engine.dispose()
        upgrade(url)  # running again is a no-op
    finally:
        drop_database(name)


def test_sqlite_migrations_match_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    upgrade(url)
    assert diff_against_models(url) == []
