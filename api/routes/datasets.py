from __future__ import annotations

import os
import tempfile
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from starlette.concurrency import run_in_threadpool

from api.deps import OffsetQuery, OwnerDep, SessionDep, SettingsDep, StorageDep
from api.schemas.common import error_responses
from api.schemas.datasets import REJECTED_IN_LISTINGS, DatasetPublic, DatasetsPublic, DatasetUpdate
from core import datasets as service
from core.errors import InvalidDataset
from core.queue import enqueue_preparation

router = APIRouter(prefix="/datasets", tags=["datasets"])
ERRORS = error_responses(400, 404, 409, 413, 422)
CHUNK = 1024 * 1024
MAX_NAME_LENGTH = 255  # the column's length; a longer file name keeps its last 255 characters


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
    settings: SettingsDep,
    storage: StorageDep,
    owner: OwnerDep,
    file: Annotated[
        UploadFile,
        File(description="A ZIP: one folder per class, train/ val/ [test/] folders, or a `path label` index"),
    ],
    name: Annotated[str | None, Form(max_length=MAX_NAME_LENGTH)] = None,
    val_fraction: Annotated[float, Form(ge=0.01, lt=1.0)] = 0.15,
    test_fraction: Annotated[float, Form(ge=0.0, lt=1.0)] = 0.15,
    seed: Annotated[int, Form(ge=0, le=2**31 - 1)] = 0,
):
    """Upload a dataset. A worker decodes it into the array store.

    What the ZIP's listing shows is checked first (not a ZIP, damaged, empty, a bomb, unsafe paths,
    fewer than two classes with image files): 422 naming the file. Then `status` goes
    preparing → ready | failed.
    """
    if val_fraction + test_fraction >= 1.0:
        raise InvalidDataset(
            f"val_fraction + test_fraction must be below 1; got {val_fraction + test_fraction}"
        )
    filename = (file.filename or "dataset")[-MAX_NAME_LENGTH:]
    path = await save_upload(file, storage.tmp_dir)
    try:
        if os.path.getsize(path) == 0:
            raise InvalidDataset(f"{filename}: the uploaded file is empty")
        await run_in_threadpool(service.check_upload, path, filename, settings)

        def register() -> DatasetPublic:  # database and broker calls block: not on the event loop
            row = service.register_upload(
                session,
                storage,
                path,
                owner=owner,
                name=name or filename,
                val_fraction=val_fraction,
                test_fraction=test_fraction,
                seed=seed,
            )
            session.commit()
            enqueue_preparation(row.id)
            return DatasetPublic.from_row(row, storage)

        return await run_in_threadpool(register)
    finally:
        if os.path.exists(path):
            os.unlink(path)


@router.get("", response_model=DatasetsPublic)
def list_datasets(
    session: SessionDep,
    storage: StorageDep,
    owner: OwnerDep,
    offset: OffsetQuery = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
):
    rows, count = service.list_datasets(session, owner, offset, limit)
    data = [DatasetPublic.from_row(r, storage, REJECTED_IN_LISTINGS) for r in rows]
    return DatasetsPublic(data=data, count=count)


@router.get("/{dataset_id}", response_model=DatasetPublic, responses=ERRORS)
def get_dataset(dataset_id: str, session: SessionDep, storage: StorageDep, owner: OwnerDep):
    return DatasetPublic.from_row(service.get_dataset(session, dataset_id, owner), storage)


@router.patch("/{dataset_id}", response_model=DatasetPublic, responses=ERRORS)
def describe_dataset(
    dataset_id: str, body: DatasetUpdate, session: SessionDep, storage: StorageDep, owner: OwnerDep
):
    """Rename a dataset or change its note: only the fields sent change; a null note clears it."""
    row = service.describe_dataset(session, dataset_id, owner, body.model_dump(include=body.model_fields_set))
    session.commit()
    return DatasetPublic.from_row(row, storage)


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
def delete_dataset(dataset_id: str, session: SessionDep, storage: StorageDep, owner: OwnerDep):
    """Delete a dataset and its files; 409 while a queued or running job uses it."""
    service.delete_dataset(session, storage, dataset_id, owner)
    session.commit()  # before the answer, not in the dependency's teardown after it
