"""From upload to prediction through the real processes: API (Uvicorn), Celery workers, PostgreSQL, Redis."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest

from testkit.images import make_image
from testkit.processes import start_embedded
from testkit.service import follow_to_the_end, upload_and_wait, wait_for

pytestmark = pytest.mark.e2e


def test_upload_train_follow_download_predict(running_service, tmp_path):
    http = httpx.Client(base_url=running_service["url"], timeout=60)
    dataset = upload_and_wait(http, tmp_path)
    assert dataset["classes"] == ["cat", "dog"] and dataset["splits"] == {"train": 12, "val": 4, "test": 4}

    job = http.post(
        "/jobs", json={"dataset_id": dataset["id"], "num_epochs": 3, "batch_size": 4, "learning_rate": 0.01}
    ).json()
    events = follow_to_the_end(http, job["id"])
    kinds = [name for name, _ in events]
    assert kinds[-1] == "end" and events[-1][1]["status"] == "succeeded"
    statuses = [data["status"] for name, data in events if name == "status"]
    assert "running" in statuses
    steps = [data["step"] for name, data in events if name == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 9
    assert [data["epoch"] for name, data in events if name == "val"] == [1, 2, 3]

    finished = http.get(f"/jobs/{job['id']}").json()
    assert (
        finished["status"] == "succeeded"
        and finished["progress"]["fraction"] == 1.0
        and finished["test"] is not None
    )
    metrics = http.get(f"/jobs/{job['id']}/metrics").json()
    assert [p["step"] for p in metrics["train"]] == list(range(1, 10)) and len(metrics["val"]) == 3

    first = http.get(f"/jobs/{job['id']}/model")  # the prepare worker builds it, then it is there
    assert first.status_code in (200, 202) and (first.status_code == 200 or first.headers["retry-after"])
    archive = wait_for(
        lambda: (r := http.get(f"/jobs/{job['id']}/model")).status_code == 200 and r, timeout=120
    )
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    export_dir = tmp_path / "export"
    zipfile.ZipFile(io.BytesIO(archive.content)).extractall(export_dir)
    (export_root,) = list(export_dir.iterdir())
    assert json.loads((export_root / "labels.json").read_text()) == ["cat", "dog"]
    board = http.get(f"/jobs/{job['id']}/tensorboard")
    assert board.status_code == 200 and any(
        "events.out.tfevents" in n for n in zipfile.ZipFile(io.BytesIO(board.content)).namelist()
    )

    images = [make_image(0, 500), make_image(1, 501, fmt="PNG")]
    served = http.post(
        "/predict",
        files=[("image", (f"{i}.img", data)) for i, data in enumerate(images)],
        data={"job_id": job["id"], "top_k": "2"},
    )
    assert served.status_code == 200, served.text
    body = served.json()
    assert body["model"] == f"job:{job['id']}" and len(body["predictions"]) == 2
    from model.exports.export import load_export

    offline = load_export(export_root).predict(images, top_k=2)  # the downloaded model predicts the same
    for online, local in zip(body["predictions"], offline):
        assert [p["label"] for p in online] == [p["label"] for p in local]
        assert np.allclose([p["probability"] for p in online], [p["probability"] for p in local], atol=1e-6)


def test_the_same_flow_on_the_embedded_default(tmp_path, weights_file_for_service):
    """`finetune up` with no database or broker configured: SQLite and a folder broker in the data folder."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "bvlc_alexnet.npz").symlink_to(weights_file_for_service)
    up, base = start_embedded(data_dir, tmp_path / "up.log")
    try:
        http = httpx.Client(base_url=base, timeout=60)
        dataset = upload_and_wait(http, tmp_path)
        job = http.post("/jobs", json={"dataset_id": dataset["id"], "num_epochs": 2, "batch_size": 6}).json()
        events = follow_to_the_end(http, job["id"])
        assert events[-1][1]["status"] == "succeeded", up.output()[-3000:]
        served = http.post(
            "/predict", files={"image": ("cat.jpg", make_image(0, 7))}, data={"job_id": job["id"]}
        )
        assert served.status_code == 200 and served.json()["predictions"][0][0]["label"] in ("cat", "dog")
        assert (data_dir / "finetune.db").is_file() and (data_dir / "broker").is_dir()
        assert list(
            (data_dir / "broker" / "control").glob("*.exchange")
        )  # kombu's tables: in the data folder
        assert not (Path(__file__).resolve().parents[2] / "control").exists()
        # the worker's and the API's compiled kernels are kept for their next start
        assert list((data_dir / "compiled").glob("tf-*/*.pb"))
    finally:
        up.stop()
