"""Run Alembic migrations from code: `finetune migrate`, the prestart step and the tests use this."""

from __future__ import annotations

import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from core.db import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def wait_for_database(database_url: str, timeout: float = 60.0) -> None:
    """The prestart step: a database that is still starting is waited for, not failed on."""
    deadline = time.monotonic() + timeout
    engine = make_engine(database_url)
    try:
        while True:
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)
    finally:
        engine.dispose()


def upgrade(database_url: str, revision: str = "head") -> None:
    wait_for_database(database_url)
    command.upgrade(alembic_config(database_url), revision)
