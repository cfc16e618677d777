"""Run one job: take its lease, call `model.training.loop.train`, record the outcome on the row."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from functools import partial

from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.db import get_sessionmaker
from core.jobs import start_weights_dir
from core.lease import JobLease, RowLease, gave_up
from core.queue import enqueue_training
from core.states import JobStatus
from core.storage import Storage
from core.tables import JobRow, utcnow
from core.weights import shown_weights_path
from model.training.checkpoint import discard_checkpoint
from model.training.spec import TrainSpec
from worker.recorder import JobRecorder

log = logging.getLogger(__name__)
_active: dict[str, JobRecorder] = {}  # running jobs in this process, for a stop


def run_job(job_id: str, settings: Settings, sessions: sessionmaker[Session] | None = None) -> str:
    """Returns what happened: succeeded, failed, cancelled, released (given back) or skipped."""
    sessions = sessions or get_sessionmaker()
    storage = Storage(settings)
    lease = JobLease(job_id, sessions, settings.lease_seconds)
    if not lease.acquire():
        log.info("job %s: not queued, or running under another worker's lease; nothing to do", job_id)
        return "skipped"
    started = _start(job_id, lease, sessions, settings)
    if started is None:
        return JobStatus.FAILED
    spec, dataset_id = started
    recorder = JobRecorder(
        job_id, sessions, lease, settings.metrics_flush_seconds, settings.cancel_poll_seconds
    )
    _active[job_id] = recorder
    try:
        outcome, error, result = _train(job_id, spec, dataset_id, settings, storage, recorder)
    finally:
        _active.pop(job_id, None)
        recorder.close()
    if recorder.lease_lost:
        log.error("job %s: another worker holds it now; leaving the row to that worker", job_id)
        return "lost"
    outcome = _record_outcome(job_id, outcome, error, result, recorder, lease, sessions)
    if outcome == JobStatus.SUCCEEDED:
        discard_checkpoint(storage.run_dir(job_id) / "checkpoint")  # the export stays
    if outcome == "released":
        shutdown.stop_consuming()
        enqueue_training(job_id)
    log.info("job %s: %s", job_id, outcome)
    return outcome


def _start(job_id: str, lease: RowLease, sessions, settings: Settings) -> tuple[TrainSpec, str] | None:
    """Count the start, or end the job `failed` when every earlier start died with its worker."""
    with sessions() as session, session.begin():
        row = session.get(JobRow, job_id)
        error = gave_up(row.attempts, settings.max_attempts, "see the worker log, then resume the job")
        if error:
            lease.write_final(session, {"status": JobStatus.FAILED, "error": error, "finished_at": utcnow()})
            log.error("job %s: %s", job_id, error)
            return None
        row.started_at = row.started_at or utcnow()
        row.attempts += 1
        return TrainSpec(**row.spec), row.dataset_id


def _train(job_id, spec, dataset_id, settings: Settings, storage: Storage, recorder: JobRecorder):
    """The engine's run: (outcome, the error shown to people or None, the result or None)."""
    from model.data.dataset import PreparedDataset
    from model.training.loop import train

    try:
        result = train(
            spec,
            PreparedDataset(storage.dataset_dir(dataset_id)),
            storage.run_dir(job_id),
            imagenet_weights=settings.weights_path,
            start_weights=start_weights_dir(spec, storage),
            cache_dir=storage.feature_cache_dir,
            cache_max_bytes=settings.feature_cache_bytes,
            observer=recorder,
            checkpoint_seconds=settings.checkpoint_seconds,
        )
    except Exception as exc:  # noqa: BLE001 - every failure becomes a readable message on the row
        log.exception("job %s failed", job_id)
        shown = describe_failure(exc).replace(str(settings.weights_path), shown_weights_path(settings))
        return JobStatus.FAILED, storage.shown(shown), None
    return result.status, None, result


def _record_outcome(job_id, outcome, error, result, recorder, lease: RowLease, sessions) -> str:
    """The outcome on the row, written only by the lease holder; a stop that nobody asked for
    (SIGTERM) gives the job back to the queue, and is not counted as a failed try."""
    with sessions() as session, session.begin():
        row = session.get(JobRow, job_id)
        progress = {**recorder.progress, "eta_seconds": None}
        if outcome == JobStatus.CANCELLED and not row.cancel_requested:
            outcome = "released"
            values = {"status": JobStatus.QUEUED, "attempts": JobRow.attempts - 1}
        else:
            values = {"status": JobStatus(outcome), "error": error, "finished_at": utcnow()}
            progress["phase"] = {JobStatus.SUCCEEDED: "done"}.get(outcome, outcome)
        if result is not None and outcome == JobStatus.SUCCEEDED:
            values.update(
                best_epoch=result.best_epoch,
                best_val_accuracy=result.best_val_accuracy,
                best_val_loss=result.best_val_loss,
            )
            if result.test:
                values.update(test_accuracy=result.test.accuracy, test_loss=result.test.loss)
            progress["fraction"] = 1.0
        values["progress"] = progress
        if not lease.write_final(session, values):  # only the lease holder writes the outcome
            log.error("job %s: the lease was lost before the outcome was written; leaving it", job_id)
            return "lost"
    return outcome


def describe_failure(exc: Exception) -> str:
    """A message for people: the engine's own errors say what to do; others name their kind."""
    from model.data.sources import DatasetError
    from model.exports.weights import WeightsError
    from model.training.checkpoint import CheckpointMismatch
    from model.training.reports import TrainingDiverged
    from model.training.spec import SpecError

    if isinstance(exc, TrainingDiverged | WeightsError | DatasetError | CheckpointMismatch | SpecError):
        return str(exc)
    full = "the disk is full: free space in the data folder, then resume the job"
    if isinstance(exc, OSError):
        if exc.errno == 28:
            return full
        if exc.errno in (13, 30):
            return (
                f"the data folder is not writable ({exc.filename}): fix its permissions, then resume the job"
            )
        return f"file error: {exc.strerror or exc} ({exc.filename})"
    if type(exc).__module__.startswith("tensorflow."):  # TensorFlow's own writes: the export's SavedModel
        if "No space left on device" in str(exc):
            return full
        if "Read-only file system" in str(exc) or "Permission denied" in str(exc):
            return "the data folder is not writable: fix its permissions, then resume the job"
    return f"internal error ({exc.__class__.__name__}): {exc}; see the worker log"


class Shutdown:
    """This process's stop: SIGTERM or SIGINT (Ctrl-C) asks running jobs to checkpoint at their
    next step and go back to the queue. `stop_consuming` (the worker's) runs before a job is handed
    back, so the message that hands it back goes to another worker, or to the next start."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.stop_consuming: Callable[[], None] = lambda: None

    def install(self, stop_consuming: Callable[[], None]) -> None:
        self.stop_consuming = stop_consuming
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, partial(self._handle, signal.getsignal(sig)))

    def _handle(self, previous, signum, frame) -> None:
        self.requested.set()
        for recorder in list(_active.values()):
            recorder.request_stop()
        if callable(previous):  # Celery's own: a warm shutdown once the task has returned
            previous(signum, frame)


shutdown = Shutdown()
