"""The read-only views the dashboard uses: a dataset's images and a job's per-image predictions."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from core.config import get_settings
from core.storage import Storage
from testkit.service import ready_dataset
from tests.service.test_worker import create_job
from worker.runner import run_job


def test_images_are_listed_by_class_and_split_and_served_as_stored(client, tmp_path):
    dataset = ready_dataset(client, tmp_path)  # 8 per class: 5 train, 2 val, 1 test each
    page = client.get(f"/datasets/{dataset['id']}/images", params={"class": "dog", "split": "val"}).json()
    assert page["count"] == 2 and {row["label"] for row in page["data"]} == {"dog"}
    assert all(row["split"] == "val" and row["path"].startswith("dog/") for row in page["data"])
    everything = client.get(f"/datasets/{dataset['id']}/images", params={"limit": 5, "offset": 10}).json()
    assert everything["count"] == 16 and [r["index"] for r in everything["data"]] == [10, 11, 12, 13, 14]
    index = page["data"][0]["index"]
    image = client.get(f"/datasets/{dataset['id']}/images/{index}")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    stored = np.load(Storage(get_settings()).dataset_dir(dataset["id"]) / "images.npy", mmap_mode="r")[index]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(image.content))), stored)
    again = client.get(
        f"/datasets/{dataset['id']}/images/{index}", headers={"If-None-Match": image.headers["etag"]}
    )
    assert again.status_code == 304
    assert client.get(f"/datasets/{dataset['id']}/images/99").status_code == 404
    unknown = client.get(f"/datasets/{dataset['id']}/images", params={"class": "bird"})
    assert unknown.status_code == 404 and unknown.json()["error"] == "ClassNotFound"
    assert "no class 'bird'" in unknown.json()["detail"]


def test_predictions_of_the_best_epoch_with_the_wrong_ones_apart(client, tmp_path):
    job_id = create_job(client, tmp_path, num_epochs=2)
    assert run_job(job_id, get_settings()) == "succeeded"
    job = client.get(f"/jobs/{job_id}").json()
    val = client.get(f"/jobs/{job_id}/predictions", params={"split": "val"}).json()
    assert val["count"] == 4 and val["dataset_id"] == job["dataset_id"]
    correct = sum(row["correct"] for row in val["data"])
    assert correct / 4 == job["best"]["val_accuracy"]  # the same epoch as the reported best
    for row in val["data"]:
        assert row["predicted"] == row["top"][0]["label"] and row["correct"] == (
            row["label"] == row["predicted"]
        )
        assert abs(sum(p["probability"] for p in row["top"]) - 1) < 1e-4  # both classes: the whole softmax
    wrong = client.get(f"/jobs/{job_id}/predictions", params={"split": "val", "wrong_only": "true"}).json()
    assert wrong["count"] == 4 - correct and not any(row["correct"] for row in wrong["data"])
    test = client.get(f"/jobs/{job_id}/predictions", params={"split": "test"}).json()
    assert test["count"] == 2 and sum(r["correct"] for r in test["data"]) / 2 == job["test"]["accuracy"]
