"""Dataset service: register an upload, prepare it into the array store, list, delete."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.config import Settings
from core.errors import DatasetInUse, DatasetNotFound
from core.ownership import get_owned, owned_page
from core.storage import Storage
from core.tables import DatasetRow, JobRow, utcnow

log = logging.getLogger(__name__)
ACTIVE_JOB_STATES = ("queued", "running")


def register_upload(
    session: Session,
    storage: Storage,
    upload: Path,
    *,
    owner: str | None,
    name: str,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> DatasetRow:
    """Keep the uploaded file and create the row in `preparing`; the caller commits, then enqueues."""
    row = DatasetRow(
        owner=owner,
        name=name,
        status="preparing",
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
    )
    session.add(row)
    session.flush()
    target = storage.upload_path(row.id)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(upload, target)
    return row


def prepare(session: Session, settings: Settings, dataset_id: str) -> DatasetRow | None:
    """Decode the upload into the store and record the outcome on the row (idempotent)."""
    from model.dataset import SplitFractions, prepare_dataset
    from model.sources import ArchiveLimits, DatasetError

    row = session.get(DatasetRow, dataset_id)
    if row is None or row.status != "preparing":
        return row
    storage = Storage(settings)
    upload = storage.upload_path(dataset_id)
    try:
        if not upload.is_file():
            raise DatasetError("the uploaded file is gone; upload the dataset again")
        prepared = prepare_dataset(
            upload,
            storage.dataset_dir(dataset_id),
            SplitFractions(row.val_fraction, row.test_fraction, row.seed),
            limits=ArchiveLimits(max_image_pixels=settings.max_image_pixels),
        )
    except DatasetError as exc:
        row.status, row.error = "failed", str(exc)
    except OSError as exc:
        log.exception("preparing dataset %s failed", dataset_id)
        row.status, row.error = "failed", f"could not write the dataset: {exc.strerror or exc}"
    else:
        manifest = prepared.manifest
        row.status, row.classes, row.num_images = "ready", manifest["classes"], manifest["num_images"]
        row.splits, row.rejected, row.ready_at = manifest["splits"], manifest["rejected"], utcnow()
        upload.unlink(missing_ok=True)
    return row


def get_dataset(session: Session, dataset_id: str, owner: str | None) -> DatasetRow:
    return get_owned(session, DatasetRow, dataset_id, owner, DatasetNotFound, "dataset")


def list_datasets(
    session: Session, owner: str | None, offset: int, limit: int
) -> tuple[list[DatasetRow], int]:
    return owned_page(
        session, DatasetRow, owner, offset, limit, order_by=(DatasetRow.created_at.desc(), DatasetRow.id)
    )


def delete_dataset(session: Session, storage: Storage, dataset_id: str, owner: str | None) -> None:
    row = get_dataset(session, dataset_id, owner)
    active = session.scalar(
        select(func.count()).where(JobRow.dataset_id == dataset_id, JobRow.status.in_(ACTIVE_JOB_STATES))
    )
    if active:
        raise DatasetInUse(
            f"dataset {dataset_id} is used by {active} queued or running job(s); cancel them first"
        )
    session.delete(row)
    session.flush()
    shutil.rmtree(storage.dataset_dir(dataset_id), ignore_errors=True)
    storage.upload_path(dataset_id).unlink(missing_ok=True)
