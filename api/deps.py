"""Typed dependencies: a session per request, the settings, the caller's identity."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import exists, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from core.config import Settings, get_settings
from core.db import get_sessionmaker
from core.errors import Unauthorized
from core.storage import Storage
from core.tables import ApiTokenRow


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


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(current_settings)]


async def get_storage(settings: SettingsDep) -> Storage:
    return Storage(settings)


StorageDep = Annotated[Storage, Depends(get_storage)]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def get_owner(request: Request, session: SessionDep, settings: SettingsDep) -> str | None:
    """The owner of the caller's token, or None when the service runs without tokens.

    Static tokens (FINETUNE_API_TOKENS) own as `static:<hash prefix>`; stored ones as their name.
    """
    token_rows_exist = session.scalar(select(exists().select_from(ApiTokenRow)))
    # end this read: the connection goes back to the pool before the handler runs (/predict reads its
    # uploads and decodes them first; under 16 clients the pool opened and closed connections)
    session.commit()
    if not settings.api_tokens and not token_rows_exist:
        return None
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("this service needs 'Authorization: Bearer <token>'")
    digest = hash_token(token.strip())
    for static in settings.api_tokens:
        if hash_token(static) == digest:
            return f"static:{digest[:16]}"
    name = session.scalar(select(ApiTokenRow.name).where(ApiTokenRow.token_hash == digest))
    if name is None:
        raise Unauthorized("unknown token")
    return name


OwnerDep = Annotated[str | None, Depends(get_owner)]
