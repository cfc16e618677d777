"""Every error leaves the API in one shape: {"error": <name>, "detail": <what is wrong>}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import AppError

log = logging.getLogger(__name__)

STATUS_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "ValidationError",
    503: "ServiceUnavailable",
}


def error_response(status: int, error: str, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else exc.__class__.__name__


def describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "malformed")
            parts.append(f"request body is not valid JSON: {reason}")
            continue
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body",)) or "body"
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return error_response(exc.status_code, exc.name, exc.detail, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):
        return error_response(422, "ValidationError", describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException):
        return error_response(
            exc.status_code, STATUS_NAMES.get(exc.status_code, "HTTPError"), str(exc.detail), exc.headers
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_down(_request: Request, exc: DBAPIError):
        log.warning("database error: %s", exc.__class__.__name__)
        return error_response(
            503, "ServiceUnavailable", "the database is unavailable; try again shortly", {"Retry-After": "2"}
        )

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(_request: Request, exc: PoolTimeout):
        log.warning("database connection pool exhausted")
        return error_response(
            503,
            "ServiceUnavailable",
            "the service is busy (no database connection free); try again shortly",
            {"Retry-After": "2"},
        )

    @app.exception_handler(DataError)
    async def _bad_value(_request: Request, exc: DataError):
        log.warning("value refused by the database: %s", exc.orig)
        return error_response(
            422, "ValidationError", f"a value does not fit the database: {_first_line(exc)}"
        )

    @app.exception_handler(IntegrityError)
    async def _conflict(_request: Request, exc: IntegrityError):
        log.warning("integrity error: %s", exc.orig)
        return error_response(409, "Conflict", f"the change conflicts with stored data: {_first_line(exc)}")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "InternalError", "an unexpected error occurred; it has been logged")
