"""Job bodies: what `POST /jobs` takes, a job, its metrics, its predictions and its model build."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import UtcDatetime
from api.schemas.predict import Prediction
from core.states import JOB_ENDED, JobStatus
from model.training.spec import TrainSpec

# How the job form shows each option: its group and its label (its help is the description).
FORM_FIELDS = {
    "name": ("data", "Name"),
    "note": ("data", "Note"),
    "weights": ("data", "Start from"),
    "train_layers": ("layers", "Layers that train"),
    "reinit_layers": ("layers", "Layers that start fresh"),
    "optimizer": ("optimisation", "Optimizer"),
    "learning_rate": ("optimisation", "Learning rate"),
    "momentum": ("optimisation", "Momentum"),
    "batch_size": ("optimisation", "Batch size"),
    "num_epochs": ("schedule", "Epochs"),
    "lr_schedule": ("schedule", "Learning-rate schedule"),
    "warmup_epochs": ("schedule", "Warm-up epochs"),
    "early_stopping_patience": ("schedule", "Early stopping after (epochs)"),
    "dropout_rate": ("regularisation", "Dropout"),
    "weight_decay": ("regularisation", "Weight decay"),
    "label_smoothing": ("regularisation", "Label smoothing"),
    "class_weight": ("regularisation", "Class weights"),
    "augment_flip": ("regularisation", "Random flips"),
    "seed": ("regularisation", "Seed"),
    "precision": ("hardware", "Precision"),
    "xla": ("hardware", "Compile with XLA"),
    "feature_cache": ("hardware", "Feature cache"),
}
DEPRECATED_FIELDS = {"mixed_precision"}


def _form_hints(schema: dict) -> None:
    """`x-group` and `title` per option for the dashboard's generated form; old names deprecated."""
    for name, (group, title) in FORM_FIELDS.items():
        schema["properties"][name].update({"x-group": group, "title": title})
    for name in DEPRECATED_FIELDS:
        schema["properties"][name]["deprecated"] = True


class JobCreate(TrainSpec):
    """A finetune: the dataset plus the training options (defaults as in the engine)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_form_hints)

    dataset_id: str = Field(min_length=1, max_length=64)
    weights: str = Field(
        default="imagenet",
        min_length=1,
        max_length=80,
        pattern=r"^(imagenet|random|job:[0-9a-f]{32})$",
        description="`imagenet`, `random`, or `job:<id>` to continue from a succeeded job.",
    )

    name: str | None = Field(default=None, max_length=255, description="What people call this job.")
    note: str | None = Field(
        default=None, max_length=4000, description="Anything worth remembering about it."
    )

    def train_spec(self) -> TrainSpec:
        return TrainSpec(**self.model_dump(exclude={"dataset_id", "name", "note"}))


class JobUpdate(BaseModel):
    """A job's name and note; only the fields sent change (null clears)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=255)
    note: str | None = Field(default=None, max_length=4000)


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
    name: str | None = None
    note: str | None = None
    status: str = Field(description="queued, running, succeeded, failed or cancelled")
    spec: dict[str, Any]
    dataset_id: str | None
    classes: list[str] | None = Field(
        default=None, description="the dataset's class names, kept with the job"
    )
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
            name=row.name,
            note=row.note,
            classes=row.classes,
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


class ImagePrediction(BaseModel):
    index: int  # the image's index in the dataset: GET /datasets/{dataset_id}/images/{index}
    label: str
    predicted: str
    probability: float
    correct: bool
    top: list[Prediction]


class ImagePredictionsPublic(BaseModel):
    dataset_id: str | None
    data: list[ImagePrediction]
    count: int


class DownloadLink(BaseModel):
    url: str = Field(description="GET it without a token, once, within `expires_in_seconds`")
    filename: str
    expires_in_seconds: int


class ModelBuilding(BaseModel):
    status: str
    format: str
    detail: str
