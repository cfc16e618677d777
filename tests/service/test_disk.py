"""Disk is reclaimed: finished jobs keep only what they need, deletes remove everything, the
model archive is built once, caches go with their dataset, and sizes are shown."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from core.config import get_settings
from core.db import session_scope
from core.storage import Storage
from core.tables import JobRow, TrainMetricRow
from testkit.images import class_folder_zip
from testkit.service import downloaded_model, prepare_now, upload_dataset
from tests.service.test_worker import create_job
from worker.runner import run_job


def test_a_finished_job_keeps_its_export_not_its_checkpoints_and_deletes_cleanly(client, tmp_path):
    job_id = create_job(client, tmp_path, num_epochs=2)
    assert run_job(job_id, get_settings()) == "succeeded"
    storage = Storage(get_settings())
    run_dir = storage.run_dir(job_id)
    assert not (run_dir / "checkpoint").exists() and (run_dir / "export" / "saved_model").is_dir()
    assert not (run_dir / "best_weights.npz").exists()  # the export holds them
    job = client.get(f"/jobs/{job_id}").json()
    assert job["size_bytes"] == storage.job_size(job_id) > 0
    first = downloaded_model(client, job_id)
    built = storage.model_archive(job_id).stat().st_mtime_ns
    second = client.get(f"/jobs/{job_id}/model")
    assert first.content == second.content and storage.model_archive(job_id).stat().st_mtime_ns == built
    assert client.delete(f"/jobs/{job_id}").status_code == 204
    assert not run_dir.exists() and client.get(f"/jobs/{job_id}").status_code == 404
    with session_scope() as session:
        assert session.scalar(select(func.count()).where(TrainMetricRow.job_id == job_id)) == 0


def test_a_running_job_cannot_be_deleted(client, tmp_path):
    job_id = create_job(client, tmp_path, num_epochs=1)
    with session_scope() as session:
        session.get(JobRow, job_id).status = "running"
    response = client.delete(f"/jobs/{job_id}")
    assert response.status_code == 409 and "cancel it first" in response.json()["detail"]


def test_feature_caches_go_with_their_dataset(client, tmp_path):
    dataset_id = upload_dataset(client, tmp_path, size=(71, 53))["id"]  # images no other test uses
    assert prepare_now(dataset_id) == "ready"
    job_id = client.post("/jobs", json={"dataset_id": dataset_id, "num_epochs": 1, "batch_size": 4}).json()[
        "id"
    ]
    assert run_job(job_id, get_settings()) == "succeeded"
    cache = Storage(get_settings()).feature_cache_dir
    manifest = json.loads((Storage(get_settings()).dataset_dir(dataset_id) / "manifest.json").read_text())
    entries = [m.parent for m in cache.glob("*/dataset") if m.read_text() == manifest["fingerprint"]]
    assert entries
    client.delete(f"/jobs/{job_id}")
    assert client.delete(f"/datasets/{dataset_id}").status_code == 204
    assert not any(entry.exists() for entry in entries)


def test_listings_cap_the_rejected_files_and_show_sizes(client, tmp_path):
    junk = {f"cat/junk-{i}.jpg": b"not an image" for i in range(150)}
    archive = class_folder_zip(tmp_path / "junk.zip", per_class=4, extra=junk)
    dataset = client.post("/datasets", files={"file": ("junk.zip", archive.read_bytes())}).json()
    assert prepare_now(dataset["id"]) == "ready"
    listed = client.get("/datasets").json()["data"][0]
    assert len(listed["rejected"]) == 100 and listed["rejected_count"] == 150
    whole = client.get(f"/datasets/{dataset['id']}").json()
    assert len(whole["rejected"]) == 150 and whole["size_bytes"] > 8 * 227 * 227 * 3


def test_sizes_are_read_while_a_worker_removes_files(tmp_path):
    """GET /jobs/{id} sizes a run folder while its worker discards the checkpoint (CI saw a 500)."""
    import shutil
    import threading

    run, stop = tmp_path / "run", threading.Event()

    def discard_checkpoints_again_and_again():
        while not stop.is_set():
            for i in range(20):
                step = run / "checkpoint" / f"step-{i}"
                step.mkdir(parents=True, exist_ok=True)
                (step / "variables.npz").write_bytes(b"x" * 100)
            shutil.rmtree(run / "checkpoint", ignore_errors=True)

    churn = threading.Thread(target=discard_checkpoints_again_and_again)
    churn.start()
    try:
        sizes = [Storage.size_bytes(run) for _ in range(2000)]
    finally:
        stop.set()
        churn.join()
    assert all(0 <= size <= 20 * 100 for size in sizes) and any(sizes)
