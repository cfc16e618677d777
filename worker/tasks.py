"""Thin tasks: they receive ids, never objects; the logic lives in plain functions."""

from __future__ import annotations

from celery.exceptions import Reject

from core import model_files
from core.config import get_settings
from core.datasets import prepare
from core.queue import ARCHIVE_TASK, PREPARE_TASK, TRAIN_TASK
from worker.celery_app import app
from worker.runner import run_job, shutdown


@app.task(name=TRAIN_TASK)
def finetune(job_id: str) -> str:
    if shutdown.requested.is_set():  # a message that reached a worker on its way out: for another
        raise Reject(f"job {job_id}: this worker is stopping", requeue=True)
    return run_job(job_id, get_settings())


@app.task(name=ARCHIVE_TASK)
def build_model_archive(job_id: str, fmt: str) -> str:
    return model_files.build_model_archive(get_settings(), job_id, fmt)


@app.task(name=PREPARE_TASK)
def prepare_dataset(dataset_id: str) -> str:
    return prepare(get_settings(), dataset_id)
