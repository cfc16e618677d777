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
    from starlette.applications import Starlette

    from api.deps import get_owner
    from core.config import get_settings
    from core.db import get_engine, session_scope

    scope = {"type": "http", "method": "GET", "path": "/jobs", "headers": [], "client": ("127.0.0.1", 1)}
    request = Request({**scope, "app": Starlette()})
    with session_scope() as session:
        assert get_owner(request, session, get_settings()) is None  # no tokens: open
        assert not session.in_transaction()
        assert get_engine().pool.checkedout() == 0


def test_a_request_goes_to_the_thread_pool_only_for_its_database_work(client, monkeypatch):
    """The settings, the storage, and opening and ending a session whose work is done need no I/O,
    so they run on the event loop. /predict took five trips to the thread pool, now two (the
    caller's token, then the job and the model): 3.35 → 2.71 ms at one client for a missing job."""
    import anyio.to_thread

    trips = []
    run_sync = anyio.to_thread.run_sync

    async def counted(function, *args, **kwargs):
        called = getattr(function, "func", function)  # FastAPI passes partial(dependency, **values)
        trips.append(getattr(called, "__qualname__", repr(called)))
        return await run_sync(function, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    response = client.post("/predict", files={"image": ("x.jpg", b"not read")}, data={"job_id": "nope"})
    assert response.status_code == 404
    assert trips == ["get_owner", "_predict"]


def test_the_request_session_commits_a_handlers_writes_and_rolls_back_a_failed_ones(clean_tables):
    """The session dependency ends on the event loop only when nothing is left to end: a handler's
    open transaction still commits, or rolls back when the handler raises, in the thread pool."""
    import asyncio

    import pytest
    from sqlalchemy import select

    from api.deps import get_session
    from core.db import get_engine, session_scope
    from core.tables import ApiTokenRow

    async def request(name: str, fail: bool) -> None:
        dependency = get_session()
        session = await anext(dependency)
        session.add(ApiTokenRow(name=name, token_hash=name * 8))
        session.flush()
        if fail:
            with pytest.raises(RuntimeError):
                await dependency.athrow(RuntimeError("the handler failed"))
        else:
            with pytest.raises(StopAsyncIteration):
                await anext(dependency)

    asyncio.run(request("kept", fail=False))
    asyncio.run(request("lost", fail=True))
    with session_scope() as session:
        assert session.scalars(select(ApiTokenRow.name)).all() == ["kept"]
    assert get_engine().pool.checkedout() == 0
