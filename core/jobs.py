"""Job service: create, list, cancel, resume. Rows change here; workers are told after commit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import or_
from sqlalchemy.orm import Session

from core.config import Settings
from core.datasets import get_dataset
from core.db import database_now
from core.errors import (
    DatasetNotReady,
    InvalidRequest,
    JobNotFound,
    JobStateConflict,
)
from core.ownership import get_owned, owned_column, owned_page
from core.states import JOB_ENDED, DatasetStatus, JobStatus, forget_marked, transition
from core.storage import Storage
from core.tables import JobRow, utcnow
from core.weights import require_weights
from model.training.spec import SpecError, TrainSpec

PREVIOUS_JOB_PREFIX = "job:"


def create_job(
    session: Session,
    settings: Settings,
    owner: str | None,
    dataset_id: str,
    spec: TrainSpec,
    name: str | None = None,
    note: str | None = None,
) -> JobRow:
    """Check that the job can run, then write it as `queued`. The caller commits, then enqueues."""
    dataset = get_dataset(session, dataset_id, owner, for_update=True)  # a delete waits for this commit
    if dataset.status != DatasetStatus.READY:
        detail = f": {dataset.error}" if dataset.error else ""
        raise DatasetNotReady(f"dataset {dataset_id} is {dataset.status}{detail}; jobs need a ready dataset")
    if spec.weights == "imagenet":
        require_weights(settings)
    if spec.weights.startswith(PREVIOUS_JOB_PREFIX):
        previous = get_job(session, spec.weights.removeprefix(PREVIOUS_JOB_PREFIX), owner)
        if previous.status != JobStatus.SUCCEEDED:
            raise JobStateConflict(
                f"job {previous.id} is {previous.status}; only a succeeded job can be continued from"
            )
    elif spec.weights not in ("imagenet", "random"):
        raise JobStateConflict(f"weights must be 'imagenet', 'random' or 'job:<id>'; got {spec.weights!r}")
    try:
        spec.check_classes(len(dataset.classes or []), _source_classes(spec, Storage(settings)))
    except SpecError as exc:
        raise InvalidRequest(str(exc)) from None
    row = JobRow(
        owner=owner,
        dataset_id=dataset_id,
        status=JobStatus.QUEUED,
        spec=spec.model_dump(mode="json"),
        name=name,
        note=note,
        classes=list(dataset.classes or []),
    )
    session.add(row)
    session.flush()
    return row


def _source_classes(spec: TrainSpec, storage: Storage) -> int | None:
    """How many classes the starting weights' fc8 has: 1000 for imagenet, the earlier job's own."""
    if spec.weights == "imagenet":
        return 1000
    if spec.weights.startswith(PREVIOUS_JOB_PREFIX):
        labels = storage.export_dir(spec.weights.removeprefix(PREVIOUS_JOB_PREFIX)) / "labels.json"
        return len(json.loads(labels.read_text())) if labels.is_file() else None
    return None


def start_weights_dir(spec: TrainSpec, storage: Storage) -> Path | None:
    """Where this host finds the weights `job:<id>` names: that job's export. The spec keeps the
    name (as the row, the checkpoint and the export do), so any host that mounts the data folder,
    at whatever path, resumes the run."""
    if spec.weights.startswith(PREVIOUS_JOB_PREFIX):
        return storage.export_dir(spec.weights.removeprefix(PREVIOUS_JOB_PREFIX))
    return None


def get_job(session: Session, job_id: str, owner: str | None) -> JobRow:
    return get_owned(session, JobRow, job_id, owner, JobNotFound, "job")


def describe_job(session: Session, job_id: str, owner: str | None, changes: dict) -> JobRow:
    """A new name or note (None clears it); what runs is not touched."""
    row = get_job(session, job_id, owner)
    for field in changes.keys() & {"name", "note"}:
        setattr(row, field, changes[field])
    return row


def job_status(session: Session, job_id: str, owner: str | None) -> str:
    return owned_column(session, JobRow.status, job_id, owner, JobNotFound, "job")


def list_jobs(
    session: Session,
    owner: str | None,
    status: str | None,
    offset: int,
    limit: int,
    sweep_id: str | None = None,
) -> tuple[list[JobRow], int]:
    filters = [JobRow.status == status] if status else []
    if sweep_id:
        filters.append(JobRow.sweep_id == sweep_id)
    return owned_page(
        session, JobRow, owner, offset, limit, *filters, order_by=(JobRow.created_at.desc(), JobRow.id)
    )


def cancel_job(session: Session, job_id: str, owner: str | None) -> JobRow:
    """A queued job is cancelled at once; a running one is asked to stop and stops within a step.

    Each case is a transition, so a worker taking the job at the same moment is never overwritten:
    the cancel then becomes a request the worker sees within a step. A running job whose lease
    expired ends at once, its lease cleared: a holder that only stalled can no longer write.
    """
    get_job(session, job_id, owner)  # 404 for unknown ids and other owners
    now = utcnow()
    expired = or_(JobRow.lease_expires.is_(None), JobRow.lease_expires < database_now(session))
    done = (
        transition(session, JobRow, job_id, (JobStatus.QUEUED,), JobStatus.CANCELLED, finished_at=now)
        or transition(  # its worker is gone: nobody else will stop it
            session,
            JobRow,
            job_id,
            (JobStatus.RUNNING,),
            JobStatus.CANCELLED,
            expired,
            cancel_requested=True,
            finished_at=now,
        )
        or transition(session, JobRow, job_id, (JobStatus.RUNNING,), None, cancel_requested=True)
    )
    row = get_job(session, job_id, owner)
    session.refresh(row)
    if not done and row.status != JobStatus.CANCELLED:
        raise JobStateConflict(f"job {job_id} is {row.status}; only queued or running jobs can be cancelled")
    return row


def delete_job(session: Session, storage: Storage, job_id: str, owner: str | None) -> None:
    """Delete a job that is not running: its row, metrics (cascade), checkpoints, events and export.

    The row is marked and committed first, then its files go, then the row: a crash in between
    leaves a row the reconciler finishes, never a row without its files. A running job answers
    409: cancel it first, so no worker writes into a folder being removed.
    """
    get_job(session, job_id, owner)
    if not transition(session, JobRow, job_id, (JobStatus.QUEUED, *JOB_ENDED), JobStatus.DELETING):
        raise JobStateConflict(f"job {job_id} is running; cancel it first, then delete it")
    session.commit()
    finish_job_deletion(session, storage, job_id)


def finish_job_deletion(session: Session, storage: Storage, job_id: str) -> None:
    """Remove a job marked `deleting`: its files, then its row (committed)."""
    shutil.rmtree(storage.run_dir(job_id), ignore_errors=True)
    forget_marked(session, JobRow, job_id)


def resume_job(session: Session, job_id: str, owner: str | None) -> JobRow:
    """A cancelled or failed job goes back to `queued`; the worker resumes from its last checkpoint."""
    row = get_job(session, job_id, owner)
    if row.dataset_id is None:
        raise JobStateConflict(f"the dataset of job {job_id} was deleted; it cannot resume")
    resumed = transition(
        session,
        JobRow,
        job_id,
        (JobStatus.CANCELLED, JobStatus.FAILED),
        JobStatus.QUEUED,
        cancel_requested=False,
        error=None,
        finished_at=None,
        attempts=0,
    )  # attempts=0: a resumed job gets FINETUNE_MAX_ATTEMPTS fresh tries
    session.refresh(row)
    if not resumed:
        raise JobStateConflict(f"job {job_id} is {row.status}; only cancelled or failed jobs can be resumed")
    return row
