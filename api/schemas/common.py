"""The one error shape, and the types every resource's bodies share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field


class ErrorPublic(BaseModel):
    error: str = Field(examples=["JobNotFound"])
    detail: str = Field(examples=["no job with id 0f3c..."])


# SQLite hands timestamps back without their zone; every one we store is UTC.
UtcDatetime = Annotated[
    datetime, AfterValidator(lambda value: value if value.tzinfo else value.replace(tzinfo=UTC))
]


def error_responses(*codes: int) -> dict:
    """OpenAPI entries for the errors a route can answer, all in the one error shape."""
    return {code: {"model": ErrorPublic} for code in codes}
