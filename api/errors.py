"""Every error leaves the API in one shape: {"error": <name>, "detail": <what is wrong>}."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
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
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body",))
        message = error.get("msg", "invalid").removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)  # a whole-body rule names its fields
    return "; ".join(parts) or "invalid request"


HTTP_METHODS = {"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"}


def allowed_methods(request: Request, found: str | None) -> list[str]:
    """Every method documented for this request's path (the OpenAPI document is the contract),
    OPTIONS and HEAD included; for a path outside it, what the router `found`."""
    paths = getattr(request.app.state, "documented_methods", None)
    if paths is None:
        paths = request.app.state.documented_methods = [
            (
                re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$"),
                {m.upper() for m in item} & HTTP_METHODS,
            )
            for path, item in request.app.openapi()["paths"].items()
        ]
    methods = {m for pattern, documented in paths if pattern.match(request.url.path) for m in documented}
    methods = methods or {m.strip() for m in (found or "").split(",") if m.strip()}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods | {"OPTIONS"})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else exc.headers
        return error_response(exc.status_code, exc.name, exc.detail, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):
        return error_response(422, "ValidationError", describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        headers, detail = exc.headers, str(exc.detail)
        if exc.status_code == 405:  # every method of the path, not only those of the first route matched
            allowed = allowed_methods(request, (exc.headers or {}).get("Allow"))
            if request.method == "OPTIONS":
                return Response(status_code=204, headers={"Allow": ", ".join(allowed)})
            headers, detail = (
                {"Allow": ", ".join(allowed)},
                f"{request.method} is not allowed here; use {allowed}",
            )
        return error_response(
            exc.status_code, STATUS_NAMES.get(exc.status_code, "HTTPError"), detail, headers
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
