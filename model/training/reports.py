"""What a training run tells its caller, as it goes and when it ends."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunInfo:
    num_epochs: int
    steps_per_epoch: int
    train_images: int
    val_images: int
    test_images: int
    classes: list[str]
    feature_cache: str | None
    resumed_from_step: int
    resumed_at: tuple[int, int] | None = None  # (epoch, step in epoch, 0-based) when resuming
    precision: str = "float32"  # what the network computes in: `auto` resolved


@dataclass
class StepReport:
    epoch: int  # 1-based
    step: int  # global, 1-based, counted across epochs
    step_in_epoch: int
    steps_per_epoch: int
    loss: float
    accuracy: float
    images_per_second: float
    time: float  # unix seconds


@dataclass
class EpochReport:
    epoch: int
    loss: float
    accuracy: float
    per_class: list[dict]
    confusion_matrix: list[list[int]]
    train_loss: float
    train_accuracy: float
    is_best: bool
    time: float


@dataclass
class TestReport:
    loss: float
    accuracy: float
    per_class: list[dict]
    confusion_matrix: list[list[int]]


@dataclass
class TrainResult:
    status: str  # "succeeded" or "cancelled"
    epochs_completed: int
    best_epoch: int | None
    best_val_accuracy: float | None
    best_val_loss: float | None
    stopped_early: bool = False
    test: TestReport | None = None
    export_dir: str | None = None
    history: list[dict] = field(default_factory=list)
    already_finished: bool = False  # the run folder held a finished run; nothing was trained


class TrainingObserver:
    """Override what you need; every hook is called from the training thread."""

    def on_start(self, info: RunInfo) -> None: ...

    def on_phase(self, phase: str, done: int, total: int) -> None: ...

    def on_step(self, report: StepReport) -> None: ...

    def on_epoch(self, report: EpochReport) -> None: ...

    def on_test(self, report: TestReport) -> None: ...

    def should_stop(self) -> bool:
        return False


class TrainingDiverged(RuntimeError):
    """The loss, the gradients or the trained weights became NaN or infinite."""
