"""Typed dependencies: a session per request, the settings, the caller's identity."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from core.auth import needs_token, owner_of_token, tokens_ever_existed
from core.config import Settings, get_settings
from core.db import get_sessionmaker
from core.storage import Storage


async def get_session() -> AsyncIterator[Session]:
    """A unit of work per request: commits when the handler returns, rolls back when it raises.

    `async`, so that opening a session (no I/O) and ending one whose work is already done (as
    `get_owner`'s and /predict's are) costs no trip to the thread pool; a transaction still open
    at the end commits or rolls back there.
    """
    session = get_sessionmaker()()
    try:
        yield session
        if session.in_transaction():
            await run_in_threadpool(session.commit)
    except BaseException:
        if session.in_transaction():
            await run_in_threadpool(session.rollback)
        raise
    finally:
        if session.in_transaction():  # cancelled while ending it: give the connection back
            await run_in_threadpool(session.close)
        else:
            session.close()


async def current_settings() -> Settings:
    """The settings. `async` because it does no I/O: FastAPI runs a plain `def` dependency in the
    thread pool, and each trip there costs the event loop and a thread wake-up on every request."""
    return get_settings()


# scope="function": the unit of work ends (commits) before the answer is sent, so a client that got
# its answer sees the change on its next request, and a failed commit is that answer (not a log line)
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(current_settings)]


async def get_storage(settings: SettingsDep) -> Storage:
    return Storage(settings)


StorageDep = Annotated[Storage, Depends(get_storage)]


def get_owner(request: Request, session: SessionDep, settings: SettingsDep) -> str | None:
    """The owner of the caller's token, or None where `core.auth`'s policy lets the caller in without one.

    Once this process has seen a token row it asks for tokens without looking again: rows are never
    deleted (revoking marks them), so auth cannot turn itself off.
    """
    state = request.app.state
    if not getattr(state, "tokens_existed", False):
        state.tokens_existed = tokens_ever_existed(session)
    caller = request.client.host if request.client else None
    owner = None
    if needs_token(settings.auth, bool(settings.api_tokens), state.tokens_existed, caller):
        owner = owner_of_token(session, settings.api_tokens, request.headers.get("authorization", ""))
    # end this read: the connection goes back to the pool before the handler runs (/predict reads its
    # uploads and decodes them first; under 16 clients the pool opened and closed connections)
    session.commit()
    return owner


OwnerDep = Annotated[str | None, Depends(get_owner)]


# Rows to skip in a page: bounded as the database's integers are (a larger value was "bigint out of range").
OffsetQuery = Annotated[int, Query(ge=0, le=2**31 - 1, description="How many rows to skip.")]
