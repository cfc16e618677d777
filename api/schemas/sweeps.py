"""Sweep bodies: what `POST /sweeps` takes and what the sweep routes answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.common import UtcDatetime
from core.states import JobStatus
from model.training.sweep_space import MAX_TRIALS, Grid, RandomSearch


class SweepCreate(BaseModel):
    """`grid` (every combination) or `random` (draws from a space), over the options in `base`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={  # exactly one of the two, as `_one_kind` checks: the schema says it too
            "oneOf": [
                {
                    "required": ["grid"],
                    "properties": {"grid": {"type": "object"}, "random": {"type": "null"}},
                },
                {
                    "required": ["random"],
                    "properties": {"random": {"type": "object"}, "grid": {"type": "null"}},
                },
            ]
        },
    )

    dataset_id: str = Field(min_length=1, max_length=64)
    base: dict[str, Any] = Field(
        default_factory=dict, description="Job options every trial shares (any `POST /jobs` field)."
    )
    grid: Grid | None = Field(
        default=None,
        description=f"Field → values; one trial per combination, at most {MAX_TRIALS}.",
        examples=[{"learning_rate": [0.01, 0.001], "dropout_rate": [0.3, 0.5]}],
    )
    random: RandomSearch | None = Field(
        default=None,
        description="`{n_trials, seed, space: {field: {choice: [...]} | {uniform: [lo, hi]} | "
        "{log_uniform: [lo, hi]} | {int: [lo, hi]}}}`",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> SweepCreate:
        if (self.grid is None) == (self.random is None):
            raise ValueError("give either grid or random (exactly one)")
        return self


class TrialPublic(BaseModel):
    job_id: str
    params: dict[str, Any]
    status: str
    best_val_accuracy: float | None
    best_val_loss: float | None
    best_epoch: int | None
    fraction: float = Field(description="how far the trial is, 0 to 1")


class SweepPublic(BaseModel):
    id: str
    status: str = Field(description="running, succeeded, failed or cancelled")
    dataset_id: str | None
    base: dict[str, Any]
    grid: dict[str, list[Any]] | None
    random: dict[str, Any] | None
    trials: list[TrialPublic]
    best_job_id: str | None = Field(
        description="the succeeded trial with the highest validation accuracy (ties: lower loss)"
    )
    cancel_requested: bool
    created_at: UtcDatetime

    @classmethod
    def from_rows(cls, sweep, trials, status: str, best) -> SweepPublic:
        return cls(
            id=sweep.id,
            status=status,
            dataset_id=sweep.dataset_id,
            base=sweep.request.get("base") or {},
            grid=sweep.request.get("grid"),
            random=sweep.request.get("random"),
            trials=[
                TrialPublic(
                    job_id=t.id,
                    params=t.sweep_params or {},
                    status=t.status,
                    best_val_accuracy=t.best_val_accuracy,
                    best_val_loss=t.best_val_loss,
                    best_epoch=t.best_epoch,
                    fraction=1.0
                    if t.status == JobStatus.SUCCEEDED
                    else float((t.progress or {}).get("fraction") or 0.0),
                )
                for t in trials
            ],
            best_job_id=best.id if best else None,
            cancel_requested=sweep.cancel_requested,
            created_at=sweep.created_at,
        )


class SweepsPublic(BaseModel):
    data: list[SweepPublic]
    count: int
