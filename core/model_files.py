"""A job's model as a downloadable ZIP, built by a worker on the prepare queue, never in the API.

An ONNX or TFLite conversion takes tens of seconds and hundreds of MB, and zipping a SavedModel
reads about 220 MB: a request only asks for the archive. Files next to it say where it stands:
the archive itself (ready), a `.failed` note with the reason, or a `.requested` note (building).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import zipfile
from enum import StrEnum
from pathlib import Path

from core.config import Settings
from core.errors import ModelBuildFailed, ServiceBusy
from core.queue import enqueue_model_archive
from core.storage import Storage

log = logging.getLogger(__name__)
REQUEST_STALE_SECONDS = 600.0  # a request note older than this lost its worker: ask again


class ArchiveState(StrEnum):
    READY = "ready"
    BUILDING = "building"


def tensorboard_archive(storage: Storage, job_id: str) -> Path:
    """The job's TensorBoard events so far, zipped into a temporary file the caller removes (the
    events grow while it runs, so each download zips them again)."""
    storage.tmp_dir.mkdir(parents=True, exist_ok=True)
    handle, path = tempfile.mkstemp(dir=storage.tmp_dir, suffix=".zip")
    os.close(handle)
    build_archive(storage.tensorboard_dir(job_id), f"tensorboard-{job_id}", Path(path))
    return Path(path)


def archive_name(job_id: str, fmt: str) -> str:
    return f"finetune-{job_id}" if fmt == "savedmodel" else f"finetune-{job_id}-{fmt}"


def _note(archive: Path, kind: str) -> Path:
    return archive.with_name(f"{archive.name}.{kind}")


def request_archive(storage: Storage, job_id: str, fmt: str) -> ArchiveState:
    """READY when the archive exists; else BUILDING, a worker asked to build it (once, until the
    request is stale). A build that failed raises `ModelBuildFailed` once; asking again retries."""
    archive = storage.model_archive(job_id, fmt)
    if archive.is_file():
        return ArchiveState.READY
    failed = _note(archive, "failed")
    if failed.is_file():
        reason = failed.read_text()
        failed.unlink(missing_ok=True)
        raise ModelBuildFailed(
            f"building the {fmt} model of job {job_id} failed: {reason}; ask again to retry"
        )
    requested = _note(archive, "requested")
    try:
        fresh = time.time() - requested.stat().st_mtime < REQUEST_STALE_SECONDS
    except FileNotFoundError:
        fresh = False
    if not fresh:
        requested.parent.mkdir(parents=True, exist_ok=True)
        requested.touch()
        if not enqueue_model_archive(job_id, fmt):
            requested.unlink(missing_ok=True)
            raise ServiceBusy(
                "the broker is unavailable, so no worker can build the model; try again shortly"
            )
    return ArchiveState.BUILDING


def build_model_archive(settings: Settings, job_id: str, fmt: str) -> str:
    """The worker's side: convert if asked, zip, and leave the archive or a `.failed` note."""
    from model.exports.portable import portable_export

    storage = Storage(settings)
    archive, export_dir = storage.model_archive(job_id, fmt), storage.export_dir(job_id)
    if archive.is_file():
        return "ready"
    try:
        if not (export_dir / "saved_model").is_dir():
            raise FileNotFoundError("the job's export is gone (was the job deleted?)")
        folder = (
            export_dir
            if fmt == "savedmodel"
            else portable_export(export_dir, fmt, storage.portable_dir(job_id, fmt))
        )
        build_archive(folder, archive_name(job_id, fmt), archive)
        outcome = "ready"
    except Exception as exc:  # noqa: BLE001 - the reason reaches the client that asked
        log.exception("job %s: building the %s model failed", job_id, fmt)
        if storage.run_dir(job_id).is_dir():  # not for a job deleted meanwhile
            _note(archive, "failed").write_text(storage.shown(f"{exc.__class__.__name__}: {exc}"))
        outcome = "failed"
    _note(archive, "requested").unlink(missing_ok=True)
    return outcome


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
