"""Dataset service: register an upload, prepare it into the array store, list, delete."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.db import get_sessionmaker
from core.errors import DatasetInUse, DatasetNotFound, InvalidDataset
from core.lease import LeaseKeeper, PreparationLease, gave_up
from core.ownership import get_owned, owned_page
from core.states import DATASET_VISIBLE, JOB_ACTIVE, DatasetStatus, forget_marked, transition
from core.storage import Storage
from core.tables import DatasetRow, JobRow, utcnow

log = logging.getLogger(__name__)


def archive_limits(settings: Settings):
    """What a dataset may hold, as configured: the same limits at upload and in preparation."""
    from model.data.sources import ArchiveLimits

    return ArchiveLimits(max_image_pixels=settings.max_image_pixels)


def check_upload(path: Path, filename: str, settings: Settings) -> None:
    """Refuse at once what the listing of an upload already shows; decoding stays in the worker."""
    from model.data.dataset import inspect_source
    from model.data.sources import DatasetError

    try:
        inspect_source(path, archive_limits(settings), name=filename)
    except DatasetError as exc:
        message = str(exc)
        raise InvalidDataset(message if message.startswith(filename) else f"{filename}: {message}") from None


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
        status=DatasetStatus.PREPARING,
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


def describe_dataset(session: Session, dataset_id: str, owner: str | None, changes: dict) -> DatasetRow:
    """A new name or note (a note of None clears it)."""
    row = get_dataset(session, dataset_id, owner)
    for field in changes.keys() & {"name", "note"}:
        setattr(row, field, changes[field])
    return row


class PreparationStopped(Exception):
    """The dataset was deleted, or another preparer took it over: stop and leave nothing behind."""


def prepare(settings: Settings, dataset_id: str, sessions: sessionmaker[Session] | None = None) -> str:
    """Decode the upload into the store and record the outcome on the row.

    Returns ready, failed, skipped (not preparing, or another preparer holds it) or stopped. The
    decoding runs under a lease and outside any database transaction; every failure ends the row
    `failed` with a reason, so nothing stays `preparing` forever.
    """
    from model.data.dataset import SplitFractions
    from model.data.sources import DatasetError

    sessions = sessions or get_sessionmaker()
    storage = Storage(settings)
    lease = PreparationLease(dataset_id, sessions, settings.lease_seconds)
    if not lease.acquire():
        return "skipped"
    with sessions() as session, session.begin():
        row = session.get(DatasetRow, dataset_id)
        error = gave_up(row.attempts, settings.max_attempts, "upload the dataset again")
        row.attempts += 1
        if error:
            lease.write_final(session, {"status": DatasetStatus.FAILED, "error": error})
            return DatasetStatus.FAILED
        fractions = SplitFractions(row.val_fraction, row.test_fraction, row.seed)
    keeper = LeaseKeeper(lease, interval=max(settings.lease_seconds / 3, 0.05))
    keeper.start()
    upload = storage.upload_path(dataset_id)
    try:
        values = _decode(settings, storage, dataset_id, fractions, keeper)
    except PreparationStopped:
        log.warning("dataset %s: stopped preparing (deleted, or another worker has it)", dataset_id)
        return "stopped"
    except DatasetError as exc:
        values = {"status": DatasetStatus.FAILED, "error": str(exc)}
    except OSError as exc:
        log.exception("preparing dataset %s failed", dataset_id)
        values = {
            "status": DatasetStatus.FAILED,
            "error": f"could not write the dataset: {exc.strerror or exc}",
        }
    except Exception as exc:  # noqa: BLE001 - never "preparing" forever: every failure ends the row
        log.exception("preparing dataset %s failed", dataset_id)
        values = {
            "status": DatasetStatus.FAILED,
            "error": f"could not prepare the dataset ({exc.__class__.__name__}: {exc})",
        }
    finally:
        keeper.stop()
    with sessions() as session, session.begin():
        written = lease.write_final(session, values)
    if not written:  # deleted while we finished: leave nothing behind
        if not _exists(sessions, dataset_id):
            _remove_files(storage, dataset_id)
        return "stopped"
    if values["status"] == DatasetStatus.READY:
        upload.unlink(missing_ok=True)
    return values["status"]


def _decode(settings: Settings, storage: Storage, dataset_id: str, fractions, keeper: LeaseKeeper) -> dict:
    """The upload decoded into the store, while the lease holds: the ready row's values."""
    from model.data.dataset import prepare_dataset
    from model.data.sources import DatasetError

    def check_lease(done: int, total: int) -> None:
        if keeper.lost.is_set():
            raise PreparationStopped(f"dataset {dataset_id}: deleted or taken over while preparing")

    upload = storage.upload_path(dataset_id)
    if not upload.is_file():
        raise DatasetError("the uploaded file is gone; upload the dataset again")
    manifest = prepare_dataset(
        upload,
        storage.dataset_dir(dataset_id),
        fractions,
        limits=archive_limits(settings),
        progress=check_lease,
    ).manifest
    return {
        "status": DatasetStatus.READY,
        "classes": manifest["classes"],
        "num_images": manifest["num_images"],
        "splits": manifest["splits"],
        "rejected": manifest["rejected"],
        "ready_at": utcnow(),
    }


def _exists(sessions: sessionmaker[Session], dataset_id: str) -> bool:
    """Whether the dataset is still wanted (neither deleted nor being deleted)."""
    with sessions() as session:
        status = session.scalar(select(DatasetRow.status).where(DatasetRow.id == dataset_id))
        return status not in (None, DatasetStatus.DELETING)


def _forget_features(storage: Storage, folder: Path) -> None:
    """The dataset's feature caches go with it, unless another dataset holds the same images."""
    import json

    from model.training.features import FeatureCache

    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return
    fingerprint = json.loads(manifest.read_text())["fingerprint"]
    for other in folder.parent.glob("*/manifest.json"):
        if other.parent != folder and json.loads(other.read_text()).get("fingerprint") == fingerprint:
            return
    FeatureCache(storage.feature_cache_dir).remove_dataset(fingerprint)


def get_dataset(session: Session, dataset_id: str, owner: str | None, for_update: bool = False) -> DatasetRow:
    return get_owned(session, DatasetRow, dataset_id, owner, DatasetNotFound, "dataset", for_update)


def list_datasets(
    session: Session, owner: str | None, offset: int, limit: int
) -> tuple[list[DatasetRow], int]:
    return owned_page(
        session, DatasetRow, owner, offset, limit, order_by=(DatasetRow.created_at.desc(), DatasetRow.id)
    )


def delete_dataset(session: Session, storage: Storage, dataset_id: str, owner: str | None) -> None:
    """Mark the dataset, commit, then remove its files and row (a crash in between: the reconciler).

    Its row is locked for the check, as `POST /jobs` locks it: a job created at the same moment is
    either seen here (409) or refused there (the dataset is gone), never left pointing at nothing.
    A preparation in progress loses its lease with the mark and stops.
    """
    get_dataset(session, dataset_id, owner, for_update=True)
    active = session.scalar(
        select(func.count()).where(JobRow.dataset_id == dataset_id, JobRow.status.in_(JOB_ACTIVE))
    )
    if active:
        raise DatasetInUse(
            f"dataset {dataset_id} is used by {active} queued or running job(s); cancel them first"
        )
    transition(session, DatasetRow, dataset_id, DATASET_VISIBLE, DatasetStatus.DELETING)
    session.commit()
    finish_dataset_deletion(session, storage, dataset_id)


def finish_dataset_deletion(session: Session, storage: Storage, dataset_id: str) -> None:
    """Remove a dataset marked `deleting`: its files and feature caches, then its row (committed)."""
    _remove_files(storage, dataset_id)
    forget_marked(session, DatasetRow, dataset_id)


def _remove_files(storage: Storage, dataset_id: str) -> None:
    folder = storage.dataset_dir(dataset_id)
    _forget_features(storage, folder)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(folder.with_name(folder.name + ".partial"), ignore_errors=True)  # a preparer that died
    storage.upload_path(dataset_id).unlink(missing_ok=True)
