"""Migrations are the only way tables are made: they must produce exactly what the models describe."""

from __future__ import annotations

import json

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


def test_old_job_specs_are_rewritten_to_say_what_ran(tmp_path):
    """0002: plain SGD rows get momentum 0, `momentum` rows become sgd, adam rows lose momentum."""
    from sqlalchemy import text

    from model.training.spec import TrainSpec

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    engine = make_engine(url)
    old = {
        "a": {"optimizer": "sgd", "momentum": 0.9},
        "b": {"optimizer": "momentum", "momentum": 0.8},
        "c": {"optimizer": "adam", "momentum": 0.9},
    }
    with engine.begin() as connection:
        for job_id, spec in old.items():
            connection.execute(
                text(
                    "INSERT INTO jobs (id, status, spec, progress, cancel_requested, attempts, created_at) "
                    "VALUES (:id, 'succeeded', :spec, '{}', 0, 1, '2026-11-25 00:00:00')"
                ),  # fmt: skip
                {"id": job_id, "spec": json.dumps({**TrainSpec().model_dump(mode="json"), **spec})},
            )
    upgrade(url)
    with engine.connect() as connection:
        rows = dict(connection.execute(text("SELECT id, spec FROM jobs")).all())
    engine.dispose()
    specs = {job_id: json.loads(spec) for job_id, spec in rows.items()}
    assert (specs["a"]["optimizer"], specs["a"]["momentum"]) == ("sgd", 0.0)
    assert (specs["b"]["optimizer"], specs["b"]["momentum"]) == ("sgd", 0.8)
    assert (specs["c"]["optimizer"], specs["c"]["momentum"]) == ("adam", None)
    for spec in specs.values():
        TrainSpec(**spec)  # every rewritten spec is valid as it stands
