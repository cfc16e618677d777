"""Who may call the service: one policy for the API's requests and the commands that start it.

It fails closed. With `FINETUNE_AUTH=auto` (the default) the service answers without a token
only while no token was ever created or configured and the caller is on this machine; a token,
once created, keeps auth on even after every token is revoked (revoked rows are kept, marked).
`required` always asks for one; `off` never does and answers this machine only.
"""

from __future__ import annotations

import hashlib
import ipaddress
from enum import StrEnum

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from core.errors import Unauthorized
from core.tables import ApiTokenRow

STATIC_OWNER_PREFIX = "static:"


class AuthMode(StrEnum):
    AUTO = "auto"
    REQUIRED = "required"
    OFF = "off"


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_ever_existed(session: Session) -> bool:
    """True once `finetune token create` has run here: revoking marks a row, never deletes it."""
    return bool(session.scalar(select(exists().select_from(ApiTokenRow))))


def needs_token(mode: AuthMode, static_tokens: bool, tokens_existed: bool, caller: str | None) -> bool:
    """Whether a caller at address `caller` must show a token; raises for callers never answered."""
    if mode == AuthMode.OFF:
        if not is_loopback(caller):
            raise Unauthorized(
                "authentication is off (FINETUNE_AUTH=off), so this service answers this machine only"
            )
        return False
    if mode == AuthMode.REQUIRED or static_tokens or tokens_existed:
        return True
    if not is_loopback(caller):
        raise Unauthorized(
            "this service has no API tokens yet, so it answers this machine only: "
            "create one with `finetune token create NAME`"
        )
    return False


def owner_of_token(session: Session, static_tokens: list[str], header: str) -> str:
    """The owner named by an `Authorization: Bearer <token>` header; 401 for anything else.

    Static tokens (FINETUNE_API_TOKENS) own as `static:<hash prefix>`; stored ones as their name.
    """
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("this service needs 'Authorization: Bearer <token>'")
    digest = hash_token(token.strip())
    for static in static_tokens:
        if hash_token(static) == digest:
            return f"{STATIC_OWNER_PREFIX}{digest[:16]}"
    name = session.scalar(
        select(ApiTokenRow.name).where(ApiTokenRow.token_hash == digest, ApiTokenRow.revoked_at.is_(None))
    )
    if name is None:
        raise Unauthorized("unknown or revoked token")
    return name


def sees_everything(owner: str | None) -> bool:
    """Operators' callers: anonymous ones (no auth on this machine) and static tokens; stored
    tokens are users, who see their own things (at /metrics too)."""
    return owner is None or owner.startswith(STATIC_OWNER_PREFIX)


def open_binding_refusal(mode: AuthMode, host: str, static_tokens: bool, tokens_existed: bool) -> str | None:
    """Why listening on `host` would open the service to strangers, or None when it would not."""
    if is_loopback(host):
        return None
    if mode == AuthMode.OFF:
        return f"refusing to listen on {host} with FINETUNE_AUTH=off: set it to auto or required"
    if mode == AuthMode.REQUIRED or static_tokens or tokens_existed:
        return None
    return (
        f"refusing to listen on {host} with no API tokens: create one with `finetune token create NAME` "
        "or set FINETUNE_API_TOKENS, or listen on 127.0.0.1"
    )
