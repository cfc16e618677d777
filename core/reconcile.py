"""The database is the truth: put back on the broker whatever it lost.

Redis here keeps nothing on disk, so a flush or restart loses queued messages. The reconciler
re-enqueues every queued job when the train queue is empty, every running job whose lease has
expired (its worker died), and every dataset still preparing when the prepare queue is empty.
A duplicate message is harmless: the job lease lets only one worker run a job.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import or_, select

from core.db import database_now, session_scope
from core.queue import PREPARE_QUEUE, TRAIN_QUEUE, enqueue_preparation, enqueue_training, queued_message_count
from core.states import DatasetStatus, JobStatus
from core.tables import DatasetRow, JobRow

log = logging.getLogger(__name__)


def reconcile() -> dict[str, list[str]]:
    """One pass; returns what was re-enqueued, and the deletions it finished."""
    deleted = finish_deletions()
    with session_scope() as session:
        now = database_now(session)
        orphaned = session.scalars(
            select(JobRow.id)
            .where(
                JobRow.status == JobStatus.RUNNING,
                or_(JobRow.lease_expires.is_(None), JobRow.lease_expires < now),
            )
            .order_by(JobRow.created_at)
        ).all()
        queued = session.scalars(
            select(JobRow.id).where(JobRow.status == JobStatus.QUEUED).order_by(JobRow.created_at, JobRow.id)
        ).all()
        preparing = session.scalars(
            select(DatasetRow.id)
            .where(DatasetRow.status == DatasetStatus.PREPARING)
            .order_by(DatasetRow.created_at)
        ).all()
    jobs = list(orphaned)
    if queued and queued_message_count(TRAIN_QUEUE) == 0:
        jobs += list(queued)
    datasets = list(preparing) if preparing and queued_message_count(PREPARE_QUEUE) == 0 else []
    for job_id in jobs:
        enqueue_training(job_id)
    for dataset_id in datasets:
        enqueue_preparation(dataset_id)
    if jobs or datasets:
        log.warning("reconciler re-enqueued jobs %s and datasets %s", jobs, datasets)
    return {"jobs": jobs, "datasets": datasets, **deleted}


def finish_deletions() -> dict[str, list[str]]:
    """Rows marked `deleting` whose deleter stopped before removing them: their files, then the rows."""
    from core.config import get_settings
    from core.datasets import finish_dataset_deletion
    from core.jobs import finish_job_deletion
    from core.storage import Storage

    storage = Storage(get_settings())
    with session_scope() as session:
        jobs = session.scalars(select(JobRow.id).where(JobRow.status == JobStatus.DELETING)).all()
        for job_id in jobs:
            finish_job_deletion(session, storage, job_id)
        datasets = session.scalars(
            select(DatasetRow.id).where(DatasetRow.status == DatasetStatus.DELETING)
        ).all()
        for dataset_id in datasets:
            finish_dataset_deletion(session, storage, dataset_id)
    if jobs or datasets:
        log.warning("reconciler finished deleting jobs %s and datasets %s", list(jobs), list(datasets))
    return {"deleted_jobs": list(jobs), "deleted_datasets": list(datasets)}


class Reconciler(threading.Thread):
    """Runs `reconcile` every `interval` seconds in the background until stopped."""

    def __init__(self, interval: float):
        super().__init__(name="reconciler", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        """A pass at once (a job handed back by the last worker to stop resumes now), then one an interval."""
        while True:
            try:
                reconcile()
            except Exception as exc:  # noqa: BLE001 - the database or broker may be away; try next time
                log.warning("reconciler pass failed: %s", exc.__class__.__name__)
            if self.stopped.wait(self.interval):
                return

    def stop(self) -> None:
        self.stopped.set()
