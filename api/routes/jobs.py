from __future__ import annotations

import asyncio
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Query, status
from fastapi.responses import FileResponse
from sqlalchemy import select
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from api.deps import OwnerDep, SessionDep, SettingsDep, StorageDep
from api.schemas import JobCreate, JobPublic, JobsPublic, MetricsPublic, TrainPoint, ValPoint, error_responses
from core import jobs as service
from core.db import get_sessionmaker
from core.errors import JobStateConflict
from core.queue import enqueue_training
from core.tables import TrainMetricRow, ValMetricRow

router = APIRouter(prefix="/jobs", tags=["jobs"])
ERRORS = error_responses(400, 404, 409, 422)
TERMINAL = ("succeeded", "failed", "cancelled")


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobPublic, responses=ERRORS)
def create_job(body: JobCreate, session: SessionDep, settings: SettingsDep, owner: OwnerDep):
    """Launch a finetune. 409 when the dataset is not ready or `imagenet` weights are not installed."""
    row = service.create_job(session, settings, owner, body.dataset_id, body.train_spec())
    session.commit()
    enqueue_training(row.id)
    return JobPublic.from_row(row)


@router.get("", response_model=JobsPublic)
def list_jobs(
    session: SessionDep,
    owner: OwnerDep,
    status: Annotated[
        Literal["queued", "running", "succeeded", "failed", "cancelled"] | None, Query()
    ] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
):
    """Newest first."""
    rows, count = service.list_jobs(session, owner, status, offset, limit)
    return JobsPublic(data=[JobPublic.from_row(r) for r in rows], count=count)


@router.get("/{job_id}", response_model=JobPublic, responses=ERRORS)
def get_job(job_id: str, session: SessionDep, owner: OwnerDep):
    return JobPublic.from_row(service.get_job(session, job_id, owner))


def read_metrics(session, job_id: str, after_step: int, after_epoch: int) -> MetricsPublic:
    train = session.scalars(
        select(TrainMetricRow)
        .where(TrainMetricRow.job_id == job_id, TrainMetricRow.step > after_step)
        .order_by(TrainMetricRow.step)
    ).all()
    val = session.scalars(
        select(ValMetricRow)
        .where(ValMetricRow.job_id == job_id, ValMetricRow.epoch > after_epoch)
        .order_by(ValMetricRow.epoch)
    ).all()
    return MetricsPublic(
        train=[TrainPoint.model_validate(r) for r in train], val=[ValPoint.model_validate(r) for r in val]
    )


@router.get("/{job_id}/metrics", response_model=MetricsPublic, responses=ERRORS)
def get_metrics(
    job_id: str,
    session: SessionDep,
    owner: OwnerDep,
    after_step: Annotated[int, Query(ge=0, le=2**62)] = 0,
    after_epoch: Annotated[int, Query(ge=0, le=2**62)] = 0,
):
    """The curves: train points per step, validation per epoch.

    `after_step`/`after_epoch` return only newer points.
    """
    service.get_job(session, job_id, owner)
    return read_metrics(session, job_id, after_step, after_epoch)


@router.get("/{job_id}/events", responses={200: {"content": {"text/event-stream": {}}}, **ERRORS})
async def job_events(job_id: str, owner: OwnerDep, session: SessionDep):
    """Server-Sent Events: `status`, `train` and `val` events as they happen; the stream ends with the job."""
    await run_in_threadpool(service.get_job, session, job_id, owner)
    session.close()  # the stream may last hours: it must not hold this connection
    sessions = get_sessionmaker()

    def poll(after_step: int, after_epoch: int):
        with sessions() as poll_session:
            job = JobPublic.from_row(service.get_job(poll_session, job_id, owner))
            return job, read_metrics(poll_session, job_id, after_step, after_epoch)

    async def stream():
        last_status, last_progress, after_step, after_epoch = None, None, 0, 0
        while True:
            job, metrics = await run_in_threadpool(poll, after_step, after_epoch)
            for point in metrics.train:
                yield {"event": "train", "data": point.model_dump_json()}
                after_step = point.step
            for point in metrics.val:
                yield {"event": "val", "data": point.model_dump_json()}
                after_epoch = point.epoch
            progress = job.progress.model_dump()
            if job.status != last_status or progress != last_progress:
                yield {"event": "status", "data": json.dumps({"status": job.status, "progress": progress})}
                last_status, last_progress = job.status, progress
            if job.status in TERMINAL:
                yield {"event": "end", "data": job.model_dump_json()}
                return
            await asyncio.sleep(0.5)

    return EventSourceResponse(stream(), ping=15)


@router.post("/{job_id}/cancel", response_model=JobPublic, responses=ERRORS)
def cancel_job(job_id: str, session: SessionDep, owner: OwnerDep):
    """A queued job is cancelled at once; a running one stops within one training step."""
    return JobPublic.from_row(service.cancel_job(session, job_id, owner))


@router.post(
    "/{job_id}/resume", status_code=status.HTTP_202_ACCEPTED, response_model=JobPublic, responses=ERRORS
)
def resume_job(job_id: str, session: SessionDep, owner: OwnerDep):
    """A cancelled or failed job continues from its last checkpoint, optimizer state included."""
    row = service.resume_job(session, job_id, owner)
    session.commit()
    enqueue_training(row.id)
    return JobPublic.from_row(row)


def archive_response(folder: Path, name: str, background: BackgroundTasks, storage) -> FileResponse:
    """Zip `folder` into a temporary file (stored, not deflated: weights do not compress) and send it."""
    storage.tmp_dir.mkdir(parents=True, exist_ok=True)
    handle, path = tempfile.mkstemp(dir=storage.tmp_dir, suffix=".zip")
    os.close(handle)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, Path(name) / file.relative_to(folder))
    background.add_task(os.unlink, path)
    return FileResponse(path, media_type="application/zip", filename=f"{name}.zip")


@router.get(
    "/{job_id}/model",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}}, **ERRORS},
)
def download_model(
    job_id: str, session: SessionDep, storage: StorageDep, owner: OwnerDep, background: BackgroundTasks
):
    """The export (SavedModel, weights, label map, preprocessing, specs, metrics) as a ZIP."""
    row = service.get_job(session, job_id, owner)
    if row.status != "succeeded" or not storage.export_dir(job_id).is_dir():
        raise JobStateConflict(f"job {job_id} is {row.status}; its model exists once it has succeeded")
    return archive_response(storage.export_dir(job_id), f"finetune-{job_id}", background, storage)


@router.get(
    "/{job_id}/tensorboard",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}}, **ERRORS},
)
def download_tensorboard(
    job_id: str, session: SessionDep, storage: StorageDep, owner: OwnerDep, background: BackgroundTasks
):
    """The TensorBoard event files so far, as a ZIP (`tensorboard --logdir` on the unpacked folder)."""
    service.get_job(session, job_id, owner)
    if not storage.tensorboard_dir(job_id).is_dir():
        raise JobStateConflict(f"job {job_id} has written no TensorBoard events yet")
    return archive_response(storage.tensorboard_dir(job_id), f"tensorboard-{job_id}", background, storage)
