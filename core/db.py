"""Engine and sessions. One engine per process, made from the settings on first use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import create_engine, event, make_url, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.config import get_settings

# Connections kept open, and how many more a burst may open (closed again when returned). SQLite's
# default of 5 kept made 16 /predict clients open a new connection for one request in five.
POOL = {"pool_size": 10, "max_overflow": 20}


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        in_memory = make_url(url).database in (None, "", ":memory:")  # one connection, no pool to size
        pool = {} if in_memory else POOL
        engine = create_engine(url, **pool, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record):  # API and worker share the file: WAL lets them
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **POOL, connect_args={"connect_timeout": 5})


def conditional_update(session: Session, table, row_id: str, *conditions, **values) -> bool:
    """One UPDATE of one row, only while `conditions` hold: True when it changed the row.

    Every state change goes through this (`WHERE status = ...`, `WHERE lease_owner = :me`), so a
    lost race is an answer, never a silent overwrite.
    """
    changed = session.execute(
        update(table)
        .where(table.id == row_id, *conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    return changed == 1


def database_now(session: Session) -> float:
    """The database's clock in unix seconds: leases compare against one clock, not each host's."""
    if session.get_bind().dialect.name == "postgresql":
        return float(session.scalar(text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")))
    return float(session.scalar(text("SELECT (julianday('now') - 2440587.5) * 86400.0")))


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    if settings.database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return make_engine(settings.database_url)


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A unit of work: commits on success, rolls back on error."""
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
