"""Domain errors. Each carries its HTTP status; the API turns every one into {"error", "detail"}."""

from __future__ import annotations


class AppError(Exception):
    status_code = 400
    headers: dict[str, str] | None = None

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail

    @property
    def name(self) -> str:
        return type(self).__name__


class NotFound(AppError):
    status_code = 404


class DownloadLinkNotFound(NotFound): ...


class DatasetNotFound(NotFound): ...


class JobNotFound(NotFound): ...


class SweepNotFound(NotFound): ...


class ClassNotFound(NotFound): ...


class Conflict(AppError):
    status_code = 409


class DatasetInUse(Conflict): ...


class DatasetNotReady(Conflict): ...


class JobStateConflict(Conflict): ...


class WeightsNotInstalled(Conflict): ...


class ModelBuildFailed(Conflict):
    """A worker could not build the requested model archive; asking again retries."""


class WeightsUnusable(Conflict):
    """The weights file is there but cannot be used (another layout, truncated, wrong shapes)."""


class InvalidDataset(AppError):
    status_code = 422


class InvalidRequest(AppError):
    """A request whose fields are each valid but do not make sense together."""

    status_code = 422


class TooManyImages(InvalidRequest):
    """More images than one /predict request takes (FINETUNE_MAX_PREDICT_IMAGES): send fewer."""


class InvalidImage(AppError):
    status_code = 415


class PayloadTooLarge(AppError):
    status_code = 413


class Unauthorized(AppError):
    status_code = 401


class ServiceUnavailable(AppError):
    status_code = 503


class ServiceBusy(ServiceUnavailable):
    """Too much at once: the client may try again shortly (`Retry-After`)."""

    headers = {"Retry-After": "1"}
