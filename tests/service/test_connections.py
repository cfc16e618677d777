"""Requests hold a database connection only while they use it, and bursts reuse pooled connections."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import event, text
from starlette.requests import Request

from core.db import make_engine


def test_a_burst_reuses_the_embedded_databases_connections(tmp_path):
    """Ten requests at once, twice: the second burst opens no connection (SQLite's default pool kept
    five, and reopened the rest, with their PRAGMAs, at every burst)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'embedded.db'}")
    opened = []
    event.listen(engine, "connect", lambda *_: opened.append(1))
    together = threading.Barrier(10)

    def request(_):
        with engine.connect() as connection:
            together.wait(timeout=10)  # all ten hold a connection at once
            return connection.execute(text("SELECT 1")).scalar()

    try:
        for burst in range(2):
            with ThreadPoolExecutor(10) as pool:
                assert list(pool.map(request, range(10))) == [1] * 10
            if burst == 0:
                assert len(opened) == 10
                opened.clear()
        assert opened == []
    finally:
        engine.dispose()


def test_the_token_lookup_gives_its_connection_back_before_the_handler_runs(clean_tables):
    """/predict reads its uploads and decodes them after this lookup: holding the connection
    meanwhile made concurrent requests open and close connections."""
    from api.deps import get_owner
    from core.config import get_settings
    from core.db import get_engine, session_scope

    request = Request({"type": "http", "method": "GET", "path": "/jobs", "headers": []})
    with session_scope() as session:
        assert get_owner(request, session, get_settings()) is None  # no tokens: open
        assert not session.in_transaction()
        assert get_engine().pool.checkedout() == 0
