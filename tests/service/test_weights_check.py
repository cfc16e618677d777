"""One check of the installed weights, seen the same way by POST /jobs, /predict, /readyz and `up`."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from core.config import get_settings
from core.db import session_scope
from core.tables import JobRow
from model.exports.weights import save_weights, synthetic_weights, write_synthetic_weights
from testkit.images import make_image
from testkit.service import ready_dataset
from tests.engine.test_weights import save_original_layout
from tests.service.test_api import assert_error


def truncated(path):
    write_synthetic_weights(path)
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 2)
    return path


def wrong_fc6(path):
    weights = synthetic_weights()
    weights["fc6"] = (weights["fc6"][0][:100], weights["fc6"][1])
    return save_weights(weights, path)


UNUSABLE = {
    "the original pickled .npy": (lambda p: save_original_layout(p.with_suffix(".npy")), "pickled .npy"),
    "a truncated .npz": (truncated, "not an .npz archive"),
    "another network's shapes": (wrong_fc6, "layer 'fc6'"),
}


@pytest.mark.parametrize("name", UNUSABLE)
def test_an_unusable_weights_file_is_named_everywhere_and_queues_nothing(client, tmp_path, monkeypatch, name):
    make, words = UNUSABLE[name]
    data_dir = get_settings().data_dir
    installed = make(data_dir / "bvlc_alexnet.npz")
    monkeypatch.setattr(get_settings(), "weights_path", installed)
    dataset = ready_dataset(client, tmp_path)
    job = client.post("/jobs", json={"dataset_id": dataset["id"]})
    assert_error(job, 409, "WeightsUnusable", words, "in the data folder", "finetune download-weights")
    assert str(data_dir) not in job.json()["detail"]  # no host path reaches a client
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(JobRow)) == 0
    predict = client.post(
        "/predict", files={"image": ("a.jpg", make_image(0, 1))}, data={"model": "imagenet"}
    )
    assert_error(predict, 409, "WeightsUnusable", words)
    ready = client.get("/readyz").json()
    assert ready["status"] == "ok" and ready["checks"]["weights"].startswith("invalid: ")
    assert words in ready["checks"]["weights"] and str(data_dir) not in ready["checks"]["weights"]


def test_a_reinstalled_file_is_used_without_a_restart(client, tmp_path, monkeypatch):
    installed = tmp_path / "bvlc_alexnet.npz"
    monkeypatch.setattr(get_settings(), "weights_path", installed)
    assert client.get("/readyz").json()["checks"]["weights"] == "missing"
    truncated(installed)
    assert client.get("/readyz").json()["checks"]["weights"].startswith("invalid: ")

    def classify():
        response = client.post(
            "/predict", files={"image": ("a.jpg", make_image(0, 3))}, data={"model": "imagenet", "top_k": "3"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["model"] == "imagenet"
        return [(p["class_index"], p["probability"]) for p in response.json()["predictions"][0]]

    write_synthetic_weights(installed, seed=0)
    assert client.get("/readyz").json()["checks"]["weights"] == "ok"
    first = classify()
    write_synthetic_weights(installed, seed=1)  # another network at the same path
    second = classify()
    assert not np.allclose([p for _, p in first], [p for _, p in second])
