"""Streams a running job's metrics and progress into the database, batched, at least every second.

Writes go through a background thread. If the database is unreachable the rows stay buffered and
are written when it is back; unique (job, step) and (job, epoch) keys make repeats harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.lease import RowLease
from core.tables import JobRow, TrainMetricRow, ValMetricRow
from model.training.reports import EpochReport, RunInfo, StepReport, TrainingObserver

log = logging.getLogger(__name__)


def insert_ignoring_duplicates(session: Session, table, rows: list[dict]) -> None:
    if not rows:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(table).values(rows).on_conflict_do_nothing())


class JobRecorder(TrainingObserver):
    def __init__(
        self,
        job_id: str,
        sessions: sessionmaker[Session],
        lease: RowLease,
        flush_seconds: float = 1.0,
        cancel_poll_seconds: float = 0.5,
    ):
        self.job_id, self.sessions, self.lease = job_id, sessions, lease
        self.flush_seconds, self.cancel_poll_seconds = flush_seconds, cancel_poll_seconds
        self._lock = threading.Lock()
        self._steps: list[dict] = []
        self._epochs: list[dict] = []
        self._progress: dict = {}
        self._total_steps = 0
        self._seconds_per_step: float | None = None
        self._last_step_at: float | None = None
        self._cancel = threading.Event()
        self.lease_lost = False
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"metrics-{job_id[:8]}", daemon=True)
        self._thread.start()

    # --- TrainingObserver -------------------------------------------------------------------
    def on_start(self, info: RunInfo) -> None:
        self._total_steps = info.num_epochs * info.steps_per_epoch
        if info.resumed_from_step:
            log.info("job %s: resumed from its checkpoint after step %d", self.job_id, info.resumed_from_step)
        with self._lock:
            if info.feature_cache == "cached":
                self._progress.setdefault("feature_cache", "hit")  # no features phase came first
            self._progress.update(
                num_epochs=info.num_epochs,
                steps_per_epoch=info.steps_per_epoch,
                step=info.resumed_from_step,
                phase="training",
                fraction=info.resumed_from_step / max(self._total_steps, 1),
                precision=info.precision,
            )

    def on_phase(self, phase: str, done: int, total: int) -> None:
        with self._lock:
            self._progress.update(phase=phase, phase_done=done, phase_total=total)
            if phase == "features":
                self._progress["feature_cache"] = "miss"  # computed here, not found cached

    def on_step(self, report: StepReport) -> None:
        now = time.monotonic()
        if self._last_step_at is not None:
            elapsed = now - self._last_step_at
            self._seconds_per_step = (
                elapsed if self._seconds_per_step is None else 0.8 * self._seconds_per_step + 0.2 * elapsed
            )
        self._last_step_at = now
        remaining = max(self._total_steps - report.step, 0)
        with self._lock:
            self._steps.append(
                {
                    "job_id": self.job_id,
                    "step": report.step,
                    "epoch": report.epoch,
                    "loss": report.loss,
                    "accuracy": report.accuracy,
                    "images_per_second": report.images_per_second,
                    "time": datetime.fromtimestamp(report.time, UTC),
                }
            )
            self._progress.update(
                epoch=report.epoch,
                step=report.step,
                step_in_epoch=report.step_in_epoch,
                phase="training",
                fraction=report.step / max(self._total_steps, 1),
                images_per_second=report.images_per_second,
                eta_seconds=None if self._seconds_per_step is None else remaining * self._seconds_per_step,
            )

    def on_epoch(self, report: EpochReport) -> None:
        with self._lock:
            self._epochs.append(
                {
                    "job_id": self.job_id,
                    "epoch": report.epoch,
                    "loss": report.loss,
                    "accuracy": report.accuracy,
                    "train_loss": report.train_loss,
                    "train_accuracy": report.train_accuracy,
                    "per_class": report.per_class,
                    "confusion_matrix": report.confusion_matrix,
                    "time": datetime.fromtimestamp(report.time, UTC),
                }
            )
            if report.is_best:
                self._progress.update(
                    best={"epoch": report.epoch, "val_accuracy": report.accuracy, "val_loss": report.loss}
                )
        self._last_step_at = None  # validation time is not step time

    def should_stop(self) -> bool:
        return self._cancel.is_set()

    def request_stop(self) -> None:
        """Stop at the next step boundary (SIGTERM on the worker, say)."""
        self._cancel.set()

    # --- writing ----------------------------------------------------------------------------
    def _run(self) -> None:
        last_flush = 0.0
        while not self._closing.wait(self.cancel_poll_seconds):
            if time.monotonic() - last_flush >= self.flush_seconds:
                self.flush()
                last_flush = time.monotonic()
            else:
                self._poll_cancel()

    def _poll_cancel(self) -> None:
        try:
            with self.sessions() as session:
                self._read_cancel(session)
        except SQLAlchemyError:
            pass

    def _read_cancel(self, session: Session) -> None:
        if session.scalar(select(JobRow.cancel_requested).where(JobRow.id == self.job_id)):
            self._cancel.set()

    def flush(self) -> bool:
        """Write what is buffered; on a database error keep it for the next try. True when written."""
        with self._lock:
            steps, epochs, progress = self._steps, self._epochs, dict(self._progress)
            self._steps, self._epochs = [], []
        try:
            with self.sessions() as session, session.begin():
                if not self.lease.renew(session):  # first: a worker without the lease writes nothing
                    log.error("job %s: lease lost to another worker; stopping here", self.job_id)
                    self.lease_lost = True
                    self._cancel.set()
                    return False
                insert_ignoring_duplicates(session, TrainMetricRow, steps)
                insert_ignoring_duplicates(session, ValMetricRow, epochs)
                values = {"progress": progress}
                if best := progress.get("best"):
                    values.update(
                        best_epoch=best["epoch"],
                        best_val_accuracy=best["val_accuracy"],
                        best_val_loss=best["val_loss"],
                    )
                session.execute(update(JobRow).where(JobRow.id == self.job_id).values(**values))
                self._read_cancel(session)
            return True
        except SQLAlchemyError as exc:
            log.warning(
                "job %s: database unavailable, keeping %d metric rows for later (%s)",
                self.job_id,
                len(steps) + len(epochs),
                exc.__class__.__name__,
            )
            with self._lock:
                self._steps, self._epochs = steps + self._steps, epochs + self._epochs
            return False

    def close(self, timeout: float = 600.0) -> bool:
        """Stop the thread and write everything left, retrying while the database is away."""
        self._closing.set()
        self._thread.join()
        deadline = time.monotonic() + timeout
        while not self.flush():
            if self.lease_lost:
                return False  # another worker has the job and writes its own metrics
            if time.monotonic() > deadline:
                log.error("job %s: gave up writing buffered metrics after %.0f s", self.job_id, timeout)
                return False
            time.sleep(1.0)
        return True

    @property
    def progress(self) -> dict:
        with self._lock:
            return dict(self._progress)
