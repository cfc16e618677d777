"""Request and response bodies, named by role (…Create, …Public, …sPublic)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from core.states import JOB_ENDED, JobStatus
from model.training.spec import TrainSpec

REJECTED_IN_LISTINGS = 100  # a listing stays small; GET /datasets/{id} has every rejected file


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


class RejectedFile(BaseModel):
    path: str
    reason: str


class DatasetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    status: str = Field(description="preparing, ready or failed")
    classes: list[str]
    num_images: int
    splits: dict[str, int] = Field(description="images per split: train, val, test")
    rejected: list[RejectedFile] = Field(
        description=f"files left out, with reasons; listings show the first {REJECTED_IN_LISTINGS}"
    )
    rejected_count: int = 0
    size_bytes: int = Field(default=0, description="bytes on disk: the prepared store and any upload")
    error: str | None
    val_fraction: float
    test_fraction: float
    seed: int
    created_at: UtcDatetime

    @classmethod
    def from_row(cls, row, storage, rejected_limit: int | None = None) -> DatasetPublic:
        public = cls.model_validate(row)
        rejected = public.rejected[:rejected_limit] if rejected_limit is not None else public.rejected
        return public.model_copy(
            update={
                "rejected": rejected,
                "rejected_count": len(public.rejected),
                "size_bytes": storage.dataset_size(row.id),
            }
        )


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    count: int


class JobCreate(TrainSpec):
    """A finetune: the dataset plus the training options (defaults as in the engine)."""

    dataset_id: str = Field(min_length=1, max_length=64)
    weights: str = Field(
        default="imagenet",
        min_length=1,
        max_length=80,
        pattern=r"^(imagenet|random|job:[0-9a-f]{32})$",
        description="`imagenet`, `random`, or `job:<id>` to continue from a succeeded job.",
    )

    def train_spec(self) -> TrainSpec:
        return TrainSpec(**self.model_dump(exclude={"dataset_id"}))


class Progress(BaseModel):
    epoch: int | None = None
    num_epochs: int | None = None
    step: int | None = None
    steps_per_epoch: int | None = None
    fraction: float = 0.0
    images_per_second: float | None = None
    eta_seconds: float | None = None
    phase: str | None = Field(
        default=None, description="features (computing the frozen prefix once), training or done"
    )
    phase_done: int | None = Field(default=None, description="images done in the features phase")
    phase_total: int | None = Field(default=None, description="images in the features phase")
    precision: str | None = Field(
        default=None, description="what the run computes in (float32, bfloat16 or float16): `auto` resolved"
    )


class BestEpoch(BaseModel):
    epoch: int
    val_accuracy: float
    val_loss: float


class EvaluationResult(BaseModel):
    accuracy: float
    loss: float


class JobPublic(BaseModel):
    id: str
    status: str = Field(description="queued, running, succeeded, failed or cancelled")
    spec: dict[str, Any]
    dataset_id: str | None
    sweep_id: str | None = Field(default=None, description="the sweep this job is a trial of")
    sweep_params: dict[str, Any] | None = Field(default=None, description="what this trial varies")
    progress: Progress
    best: BestEpoch | None
    test: EvaluationResult | None
    error: str | None
    cancel_requested: bool
    attempts: int = Field(description="starts since the job was created or last resumed")
    size_bytes: int = Field(default=0, description="bytes on disk: checkpoints, events, export")
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None

    @classmethod
    def from_row(cls, row, storage=None) -> JobPublic:
        progress = {k: v for k, v in (row.progress or {}).items() if k in Progress.model_fields}
        progress.setdefault("num_epochs", row.spec.get("num_epochs"))
        if row.status in JOB_ENDED:  # nothing left to wait for
            progress.update(
                eta_seconds=None, phase="done" if row.status == JobStatus.SUCCEEDED else row.status
            )
        best = (
            None
            if row.best_epoch is None
            else BestEpoch(
                epoch=row.best_epoch, val_accuracy=row.best_val_accuracy, val_loss=row.best_val_loss
            )
        )
        test = (
            None
            if row.test_accuracy is None
            else EvaluationResult(accuracy=row.test_accuracy, loss=row.test_loss)
        )
        return cls(
            id=row.id,
            status=row.status,
            spec=row.spec,
            dataset_id=row.dataset_id,
            sweep_id=row.sweep_id,
            sweep_params=row.sweep_params,
            progress=Progress(**progress),
            best=best,
            test=test,
            error=row.error,
            cancel_requested=row.cancel_requested,
            attempts=row.attempts,
            size_bytes=storage.job_size(row.id) if storage is not None else 0,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int


class TrainPoint(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: int
    epoch: int
    loss: float
    accuracy: float
    images_per_second: float
    time: UtcDatetime


class ValPoint(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    epoch: int
    loss: float
    accuracy: float
    train_loss: float
    train_accuracy: float
    per_class: list[dict[str, Any]] = Field(description="per class: class, precision, recall, support")
    confusion_matrix: list[list[int]] | None = Field(
        description="rows: true class, columns: predicted class; only with `confusion_matrix=true`"
    )
    time: UtcDatetime


class MetricsPublic(BaseModel):
    train: list[TrainPoint]
    val: list[ValPoint]
    more: bool = Field(default=False, description="more train points follow: ask again with `after_step`")


class Prediction(BaseModel):
    label: str
    class_index: int
    probability: float


class PredictionsPublic(BaseModel):
    model: str = Field(description="`imagenet` or `job:<id>`")
    precision: str = Field(description="what answered: float32, bfloat16 or float16")
    predictions: list[list[Prediction]] = Field(
        description="top-k per image, in the order the images were sent"
    )


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}
