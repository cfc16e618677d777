"""A job's files as ZIPs: its model (SavedModel, ONNX or TFLite) and its TensorBoard events."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Query
from fastapi.responses import FileResponse, JSONResponse

from api.deps import OwnerDep, SessionDep, StorageDep
from api.schemas.common import error_responses
from api.schemas.jobs import ModelBuilding
from core import jobs as service
from core.errors import JobStateConflict
from core.model_files import ArchiveState, archive_name, build_archive, request_archive
from core.states import JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"])
ERRORS = error_responses(404, 409, 422, 503)
ZIP = {200: {"content": {"application/zip": {}}}}


@router.get(
    "/{job_id}/model",
    response_class=FileResponse,
    responses={**ZIP, 202: {"model": ModelBuilding, "description": "a worker is building it"}, **ERRORS},
)
def download_model(
    job_id: str,
    session: SessionDep,
    storage: StorageDep,
    owner: OwnerDep,
    format: Annotated[Literal["savedmodel", "onnx", "tflite"], Query()] = "savedmodel",
):
    """The model as a ZIP. `savedmodel`: the whole export (SavedModel, weights by layer, label map,
    preprocessing, specs, metrics). `onnx` / `tflite`: `model.onnx` or `model.tflite` (uint8 RGB
    N×227×227×3 in, probabilities out), `labels.json` and `preprocess.json`. A worker builds each
    format on its first request and keeps it: until then the answer is 202 with `Retry-After` (ask
    again); 409 `ModelBuildFailed` says why a build failed (asking again retries)."""
    row = service.get_job(session, job_id, owner)
    if row.status != JobStatus.SUCCEEDED or not storage.export_dir(job_id).is_dir():
        raise JobStateConflict(f"job {job_id} is {row.status}; its model exists once it has succeeded")
    session.close()  # no database connection is held while the file streams
    if request_archive(storage, job_id, format) is ArchiveState.BUILDING:
        body = ModelBuilding(status="building", format=format, detail="a worker is building it; ask again")
        return JSONResponse(body.model_dump(), status_code=202, headers={"Retry-After": "2"})
    name = archive_name(job_id, format)
    return FileResponse(
        storage.model_archive(job_id, format), media_type="application/zip", filename=f"{name}.zip"
    )


@router.get("/{job_id}/tensorboard", response_class=FileResponse, responses={**ZIP, **ERRORS})
def download_tensorboard(
    job_id: str, session: SessionDep, storage: StorageDep, owner: OwnerDep, background: BackgroundTasks
):
    """The TensorBoard event files so far, as a ZIP (`tensorboard --logdir` on the unpacked folder)."""
    service.get_job(session, job_id, owner)
    if not storage.tensorboard_dir(job_id).is_dir():
        raise JobStateConflict(f"job {job_id} has written no TensorBoard events yet")
    session.close()  # no database connection is held while the file streams
    storage.tmp_dir.mkdir(parents=True, exist_ok=True)
    handle, path = tempfile.mkstemp(dir=storage.tmp_dir, suffix=".zip")  # events grow: zipped each time
    os.close(handle)
    build_archive(storage.tensorboard_dir(job_id), f"tensorboard-{job_id}", Path(path))
    background.add_task(os.unlink, path)
    return FileResponse(path, media_type="application/zip", filename=f"tensorboard-{job_id}.zip")
