"""A job's files as ZIPs: its model (SavedModel, ONNX or TFLite) and its TensorBoard events."""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Query
from fastapi.responses import FileResponse

from api.deps import OwnerDep, SessionDep, StorageDep
from api.schemas import error_responses
from core import jobs as service
from core.errors import JobStateConflict
from core.states import JobStatus
from model.portable import portable_export

router = APIRouter(prefix="/jobs", tags=["jobs"])
ERRORS = error_responses(404, 409, 422)
ZIP = {200: {"content": {"application/zip": {}}}}


def build_archive(folder: Path, name: str, target: Path) -> Path:
    """Zip `folder` (stored, not deflated: weights do not compress) into `target`, atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, path = tempfile.mkstemp(dir=target.parent, suffix=".zip.partial")
    os.close(handle)
    try:
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
            for file in sorted(folder.rglob("*")):
                if file.is_file():
                    archive.write(file, Path(name) / file.relative_to(folder))
        os.replace(path, target)
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise
    return target


@router.get("/{job_id}/model", response_class=FileResponse, responses={**ZIP, **ERRORS})
def download_model(
    job_id: str,
    session: SessionDep,
    storage: StorageDep,
    owner: OwnerDep,
    format: Annotated[Literal["savedmodel", "onnx", "tflite"], Query()] = "savedmodel",
):
    """The model as a ZIP. `savedmodel`: the whole export (SavedModel, weights by layer, label map,
    preprocessing, specs, metrics). `onnx` / `tflite`: `model.onnx` or `model.tflite` (uint8 RGB
    N×227×227×3 in, probabilities out), `labels.json` and `preprocess.json`. Each format is built
    on its first download (an ONNX conversion takes ~30 s on 2 CPU cores) and kept."""
    row = service.get_job(session, job_id, owner)
    export_dir = storage.export_dir(job_id)
    if row.status != JobStatus.SUCCEEDED or not export_dir.is_dir():
        raise JobStateConflict(f"job {job_id} is {row.status}; its model exists once it has succeeded")
    session.close()  # no database connection is held while it converts or the file streams
    archive = storage.model_archive(job_id, format)
    name = f"finetune-{job_id}" if format == "savedmodel" else f"finetune-{job_id}-{format}"
    if not archive.is_file():
        folder = export_dir
        if format != "savedmodel":
            folder = portable_export(export_dir, format, storage.portable_dir(job_id, format))
        build_archive(folder, name, archive)
    return FileResponse(archive, media_type="application/zip", filename=f"{name}.zip")


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
