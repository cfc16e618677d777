"""A job's files as ZIPs: its model (SavedModel, ONNX or TFLite) and its TensorBoard events."""

from __future__ import annotations

import os
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Query
from fastapi.responses import FileResponse, JSONResponse

from api.deps import OwnerDep, SessionDep, StorageDep
from api.schemas.common import error_responses
from api.schemas.jobs import DownloadLink, ModelBuilding
from core import jobs as service
from core.download_links import LINK_SECONDS, create_link
from core.errors import JobStateConflict
from core.model_files import ArchiveState, archive_name, request_archive, tensorboard_archive
from core.states import JobStatus
from core.storage import Storage

router = APIRouter(prefix="/jobs", tags=["jobs"])
ERRORS = error_responses(404, 409, 422, 503)
ZIP = {200: {"content": {"application/zip": {}}}}


ModelFormat = Annotated[Literal["savedmodel", "onnx", "tflite"], Query()]
BUILDING = {202: {"model": ModelBuilding, "description": "a worker is building it; ask again"}}


@router.get("/{job_id}/model", response_class=FileResponse, responses={**ZIP, **BUILDING, **ERRORS})
def download_model(
    job_id: str, session: SessionDep, storage: StorageDep, owner: OwnerDep, format: ModelFormat = "savedmodel"
):
    """The model as a ZIP. `savedmodel`: the whole export (SavedModel, weights by layer, label map,
    preprocessing, specs, metrics). `onnx` / `tflite`: `model.onnx` or `model.tflite` (uint8 RGB
    N×227×227×3 in, probabilities out), `labels.json` and `preprocess.json`. A worker builds each
    format on its first request and keeps it: until then the answer is 202 with `Retry-After` (ask
    again); 409 `ModelBuildFailed` says why a build failed (asking again retries)."""
    _check_model(session, storage, job_id, owner)
    session.close()  # no database connection is held while the file streams
    if request_archive(storage, job_id, format) is ArchiveState.BUILDING:
        return _building(format)
    return model_response(storage, job_id, format)


@router.post(
    "/{job_id}/model/link",
    status_code=201,
    response_model=DownloadLink,
    responses={**BUILDING, **ERRORS},
)
def link_model(
    job_id: str, session: SessionDep, storage: StorageDep, owner: OwnerDep, format: ModelFormat = "savedmodel"
):
    """A link to the model's ZIP that a browser opens without a token: once, within a minute. Like
    `GET /jobs/{id}/model`, 202 while a worker builds the format."""
    _check_model(session, storage, job_id, owner)
    if request_archive(storage, job_id, format) is ArchiveState.BUILDING:
        return _building(format)
    return _link(session, job_id, format, f"{archive_name(job_id, format)}.zip")


@router.get("/{job_id}/tensorboard", response_class=FileResponse, responses={**ZIP, **ERRORS})
def download_tensorboard(
    job_id: str, session: SessionDep, storage: StorageDep, owner: OwnerDep, background: BackgroundTasks
):
    """The TensorBoard event files so far, as a ZIP (`tensorboard --logdir` on the unpacked folder)."""
    _check_tensorboard(session, storage, job_id, owner)
    session.close()  # no database connection is held while the file streams
    return tensorboard_response(storage, job_id, background)


@router.post("/{job_id}/tensorboard/link", status_code=201, response_model=DownloadLink, responses=ERRORS)
def link_tensorboard(job_id: str, session: SessionDep, storage: StorageDep, owner: OwnerDep):
    """A link to the TensorBoard ZIP that a browser opens without a token: once, within a minute."""
    _check_tensorboard(session, storage, job_id, owner)
    return _link(session, job_id, "tensorboard", f"tensorboard-{job_id}.zip")


def model_response(storage: Storage, job_id: str, format: str) -> FileResponse:
    name = archive_name(job_id, format)
    return FileResponse(
        storage.model_archive(job_id, format), media_type="application/zip", filename=f"{name}.zip"
    )


def tensorboard_response(storage: Storage, job_id: str, background: BackgroundTasks) -> FileResponse:
    path = tensorboard_archive(storage, job_id)
    background.add_task(os.unlink, path)
    return FileResponse(path, media_type="application/zip", filename=f"tensorboard-{job_id}.zip")


def _check_model(session, storage: Storage, job_id: str, owner: str | None) -> None:
    row = service.get_job(session, job_id, owner)
    if row.status != JobStatus.SUCCEEDED or not storage.export_dir(job_id).is_dir():
        raise JobStateConflict(f"job {job_id} is {row.status}; its model exists once it has succeeded")


def _check_tensorboard(session, storage: Storage, job_id: str, owner: str | None) -> None:
    service.get_job(session, job_id, owner)
    if not storage.tensorboard_dir(job_id).is_dir():
        raise JobStateConflict(f"job {job_id} has written no TensorBoard events yet")


def _building(format: str) -> JSONResponse:
    body = ModelBuilding(status="building", format=format, detail="a worker is building it; ask again")
    return JSONResponse(body.model_dump(), status_code=202, headers={"Retry-After": "2"})


def _link(session, job_id: str, file: str, filename: str) -> DownloadLink:
    secret = create_link(session, job_id, file)
    return DownloadLink(url=f"/downloads/{secret}", filename=filename, expires_in_seconds=LINK_SECONDS)
