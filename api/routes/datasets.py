from __future__ import annotations

import os
import tempfile
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from starlette.concurrency import run_in_threadpool

from api.deps import OwnerDep, SessionDep, StorageDep
from api.schemas import DatasetPublic, DatasetsPublic, error_responses
from core import datasets as service
from core.errors import InvalidDataset
from core.queue import enqueue_preparation

router = APIRouter(prefix="/datasets", tags=["datasets"])
ERRORS = error_responses(400, 404, 409, 413, 422)
CHUNK = 1024 * 1024


async def save_upload(upload: UploadFile, folder) -> str:
    """Copy the upload to a file under the data folder in chunks, never whole into memory."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, path = tempfile.mkstemp(dir=folder, suffix=".upload")
    with os.fdopen(handle, "wb") as out:
        while chunk := await upload.read(CHUNK):
            await run_in_threadpool(out.write, chunk)
    return path


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DatasetPublic, responses=ERRORS)
async def create_dataset(
    session: SessionDep,
    storage: StorageDep,
    owner: OwnerDep,
    file: Annotated[
        UploadFile,
        File(description="A ZIP: one folder per class, train/ val/ [test/] folders, or a `path label` index"),
    ],
    name: Annotated[str | None, Form(max_length=255)] = None,
    val_fraction: Annotated[float, Form(ge=0.01, lt=1.0)] = 0.15,
    test_fraction: Annotated[float, Form(ge=0.0, lt=1.0)] = 0.15,
    seed: Annotated[int, Form(ge=0, le=2**31 - 1)] = 0,
):
    """Upload a dataset. A worker decodes it into the array store.

    `status` goes preparing → ready | failed.
    """
    if val_fraction + test_fraction >= 1.0:
        raise InvalidDataset(
            f"val_fraction + test_fraction must be below 1; got {val_fraction + test_fraction}"
        )
    path = await save_upload(file, storage.tmp_dir)
    try:
        if os.path.getsize(path) == 0:
            raise InvalidDataset("the uploaded file is empty")
        row = service.register_upload(
            session,
            storage,
            path,
            owner=owner,
            name=name or file.filename or "dataset",
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            seed=seed,
        )
        session.commit()
    finally:
        if os.path.exists(path):
            os.unlink(path)
    enqueue_preparation(row.id)
    return row


@router.get("", response_model=DatasetsPublic)
def list_datasets(
    session: SessionDep,
    owner: OwnerDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
):
    rows, count = service.list_datasets(session, owner, offset, limit)
    return DatasetsPublic(data=[DatasetPublic.model_validate(r) for r in rows], count=count)


@router.get("/{dataset_id}", response_model=DatasetPublic, responses=ERRORS)
def get_dataset(dataset_id: str, session: SessionDep, owner: OwnerDep):
    return service.get_dataset(session, dataset_id, owner)


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
def delete_dataset(dataset_id: str, session: SessionDep, storage: StorageDep, owner: OwnerDep):
    """Delete a dataset and its files; 409 while a queued or running job uses it."""
    service.delete_dataset(session, storage, dataset_id, owner)
