from __future__ import annotations

import asyncio
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, status
from sqlalchemy import select
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from api.deps import OffsetQuery, OwnerDep, SessionDep, SettingsDep, StorageDep
from api.schemas.common import error_responses
from api.schemas.jobs import JobCreate, JobPublic, JobsPublic, JobUpdate, MetricsPublic, TrainPoint, ValPoint
from core import jobs as service
from core.db import get_sessionmaker
from core.queue import enqueue_training
from core.states import JOB_ENDED
from core.tables import TrainMetricRow, ValMetricRow

router = APIRouter(prefix="/jobs", tags=["jobs"])
ERRORS = error_responses(400, 404, 409, 422)
EVENTS_PER_POLL = 1000  # a long history is replayed in pages, never read whole


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobPublic, responses=ERRORS)
def create_job(
    body: JobCreate, session: SessionDep, settings: SettingsDep, storage: StorageDep, owner: OwnerDep
):
    """Launch a finetune. 409 when the dataset is not ready or `imagenet` weights are not installed."""
    row = service.create_job(
        session, settings, owner, body.dataset_id, body.train_spec(), body.name, body.note
    )
    session.commit()
    enqueue_training(row.id)
    return JobPublic.from_row(row, storage)


@router.get("", response_model=JobsPublic)
def list_jobs(
    session: SessionDep,
    storage: StorageDep,
    owner: OwnerDep,
    status: Annotated[
        Literal["queued", "running", "succeeded", "failed", "cancelled"] | None, Query()
    ] = None,
    offset: OffsetQuery = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    sweep_id: Annotated[str | None, Query(max_length=64, description="only this sweep's trials")] = None,
):
    """Newest first."""
    rows, count = service.list_jobs(session, owner, status, offset, limit, sweep_id)
    return JobsPublic(data=[JobPublic.from_row(r, storage) for r in rows], count=count)


@router.get("/{job_id}", response_model=JobPublic, responses=ERRORS)
def get_job(job_id: str, session: SessionDep, storage: StorageDep, owner: OwnerDep):
    return JobPublic.from_row(service.get_job(session, job_id, owner), storage)


@router.patch("/{job_id}", response_model=JobPublic, responses=ERRORS)
def describe_job(job_id: str, body: JobUpdate, session: SessionDep, storage: StorageDep, owner: OwnerDep):
    """Rename a job or change its note: only the fields sent change; null clears one."""
    row = service.describe_job(session, job_id, owner, body.model_dump(include=body.model_fields_set))
    session.commit()
    return JobPublic.from_row(row, storage)


MAX_TRAIN_POINTS = 10_000


def read_metrics(
    session,
    job_id: str,
    after_step: int,
    after_epoch: int,
    limit: int = MAX_TRAIN_POINTS,
    confusion: bool = False,
) -> MetricsPublic:
    """At most `limit` train points after `after_step`; the validation points of the epochs they
    reach (all newer ones when no train point is left), so a page never shows an epoch's
    validation before that epoch's steps."""
    train = session.scalars(
        select(TrainMetricRow)
        .where(TrainMetricRow.job_id == job_id, TrainMetricRow.step > after_step)
        .order_by(TrainMetricRow.step)
        .limit(limit + 1)
    ).all()
    more = len(train) > limit
    train = train[:limit]
    last_epoch = train[-1].epoch - 1 if more else None  # an epoch not fully paged yet has no val here
    val_filter = [ValMetricRow.job_id == job_id, ValMetricRow.epoch > after_epoch]
    if last_epoch is not None:
        val_filter.append(ValMetricRow.epoch <= last_epoch)
    val = session.scalars(select(ValMetricRow).where(*val_filter).order_by(ValMetricRow.epoch)).all()
    points = [ValPoint.model_validate(r) for r in val]
    if not confusion:
        points = [p.model_copy(update={"confusion_matrix": None}) for p in points]
    return MetricsPublic(train=[TrainPoint.model_validate(r) for r in train], val=points, more=more)


@router.get("/{job_id}/metrics", response_model=MetricsPublic, responses=ERRORS)
def get_metrics(
    job_id: str,
    session: SessionDep,
    owner: OwnerDep,
    after_step: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    after_epoch: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_TRAIN_POINTS)] = MAX_TRAIN_POINTS,
    confusion_matrix: Annotated[bool, Query(description="include each epoch's confusion matrix")] = False,
):
    """The curves: train points per step (paged: `more` says whether to ask again with `after_step`),
    validation per epoch. `after_step`/`after_epoch` return only newer points."""
    service.get_job(session, job_id, owner)
    return read_metrics(session, job_id, after_step, after_epoch, limit, confusion_matrix)


@router.get("/{job_id}/events", responses={200: {"content": {"text/event-stream": {}}}, **ERRORS})
async def job_events(
    job_id: str,
    owner: OwnerDep,
    last_event_id: Annotated[
        str | None, Header(max_length=64, description="`step:epoch`: resume after it")
    ] = None,
    confusion_matrix: Annotated[
        bool, Query(description="include confusion matrices in `val` events")
    ] = False,
):
    """Server-Sent Events in time order: `train` per step, `val` after its epoch's steps, `status`
    on change, and `end` with the job. Each train/val event has an `id:`; a reconnecting client
    sends it back as `Last-Event-ID` and gets only what came after."""
    sessions = get_sessionmaker()

    def check():
        with sessions() as check_session:
            service.get_job(check_session, job_id, owner)

    await run_in_threadpool(check)  # the stream may last hours: it holds no connection between polls
    after_step, after_epoch = _resume_point(last_event_id)

    def poll(after_step: int, after_epoch: int):
        with sessions() as poll_session:
            job = JobPublic.from_row(service.get_job(poll_session, job_id, owner))
            page = read_metrics(
                poll_session, job_id, after_step, after_epoch, EVENTS_PER_POLL, confusion_matrix
            )
            return job, page

    async def stream():
        nonlocal after_step, after_epoch
        last_status, last_progress = None, None
        while True:
            job, metrics = await run_in_threadpool(poll, after_step, after_epoch)
            timeline = [(p.epoch, 0, p.step, "train", p) for p in metrics.train]
            timeline += [(p.epoch, 1, 0, "val", p) for p in metrics.val]
            for _, _, _, kind, point in sorted(timeline, key=lambda item: item[:3]):
                if kind == "train":
                    after_step = point.step
                else:
                    after_epoch = point.epoch
                yield {"event": kind, "id": f"{after_step}:{after_epoch}", "data": point.model_dump_json()}
            if metrics.more:
                continue  # replaying a long history: the next page at once
            progress = job.progress.model_dump()
            if job.status != last_status or progress != last_progress:
                yield {"event": "status", "data": json.dumps({"status": job.status, "progress": progress})}
                last_status, last_progress = job.status, progress
            if job.status in JOB_ENDED:
                yield {"event": "end", "data": job.model_dump_json()}
                return
            await asyncio.sleep(0.5)

    return EventSourceResponse(stream(), ping=15)


def _resume_point(last_event_id: str | None) -> tuple[int, int]:
    """`Last-Event-ID: step:epoch` → where to continue; anything else starts from the beginning."""
    try:
        step, epoch = (int(part) for part in (last_event_id or "").split(":"))
    except ValueError:
        return 0, 0
    largest = 2**31 - 1  # the columns are 32-bit integers
    return min(max(step, 0), largest), min(max(epoch, 0), largest)


@router.post("/{job_id}/cancel", response_model=JobPublic, responses=ERRORS)
def cancel_job(job_id: str, session: SessionDep, storage: StorageDep, owner: OwnerDep):
    """A queued job is cancelled at once; a running one stops within one training step."""
    row = service.cancel_job(session, job_id, owner)
    session.commit()  # before the answer: a client that got 200 sees the change on its next request
    return JobPublic.from_row(row, storage)


@router.post(
    "/{job_id}/resume", status_code=status.HTTP_202_ACCEPTED, response_model=JobPublic, responses=ERRORS
)
def resume_job(job_id: str, session: SessionDep, storage: StorageDep, owner: OwnerDep):
    """A cancelled or failed job continues from its last checkpoint, optimizer state included."""
    row = service.resume_job(session, job_id, owner)
    session.commit()
    enqueue_training(row.id)
    return JobPublic.from_row(row, storage)


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
def delete_job(job_id: str, session: SessionDep, storage: StorageDep, owner: OwnerDep):
    """Delete a job and everything it wrote (checkpoints, events, export, metrics); 409 while it
    runs: cancel it first."""
    service.delete_job(session, storage, job_id, owner)
    session.commit()
