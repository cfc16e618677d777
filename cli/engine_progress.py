"""What `finetune train` shows while it works, and how Ctrl-C stops it cleanly."""

from __future__ import annotations

import signal
import sys

import click
from tqdm import tqdm

from model.training.reports import TrainingObserver


class ProgressBars(TrainingObserver):
    """One bar for the feature phase, one for training, the validation line per epoch."""

    def __init__(self):
        self.features: tqdm | None = None
        self.training: tqdm | None = None
        self.stop_requested = False
        self._stop_announced = False
        self.phase = "starting"
        self.epoch, self.step_in_epoch = 1, 0

    def on_phase(self, phase, done, total):
        self.phase = "computing features"
        if self.features is None:
            self.features = tqdm(total=total, desc="features", unit="img")
        self.features.update(done - self.features.n)

    def on_start(self, info):
        self.phase = "training"
        if self.features is not None:
            self.features.close()
        if info.resumed_at:
            epoch, step = info.resumed_at
            click.echo(f"resuming from epoch {epoch}, step {step}")
        click.echo(f"computing in {info.precision}")
        total = info.num_epochs * info.steps_per_epoch
        self.training = tqdm(total=total, initial=info.resumed_from_step, desc="training", unit="step")

    def on_step(self, report):
        self.epoch, self.step_in_epoch = report.epoch, report.step_in_epoch
        self.training.set_postfix(
            epoch=report.epoch,
            loss=f"{report.loss:.4f}",
            acc=f"{report.accuracy:.3f}",
            img_s=f"{report.images_per_second:.0f}",
        )
        self.training.update(1)

    def on_epoch(self, report):
        best = " (best)" if report.is_best else ""
        self.training.write(
            f"epoch {report.epoch}: val loss {report.loss:.4f}, val accuracy {report.accuracy:.4f}{best}"
        )

    def should_stop(self) -> bool:
        if self.stop_requested and not self._stop_announced:
            self._stop_announced = True  # said here, not in the signal handler: stderr is not reentrant
            tqdm.write("stopping at the next step (Ctrl-C again to quit at once) ...", file=sys.stderr)
        return self.stop_requested

    def position(self) -> str:
        if self.phase != "training":
            return f"while {self.phase}"
        return f"at epoch {self.epoch}, after step {self.step_in_epoch}"

    def close(self) -> None:
        for bar in (self.features, self.training):
            if bar is not None:
                bar.close()


class StopOnInterrupt:
    """The first Ctrl-C asks training to stop at the next step (it checkpoints); a second one kills."""

    def __init__(self, observer: ProgressBars):
        self.observer = observer
        self.previous = None

    def _handler(self, signum, frame):
        if self.observer.stop_requested:
            raise KeyboardInterrupt
        self.observer.stop_requested = True

    def __enter__(self):
        self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)
        return False
