"""/predict answers in float32 unless the setting or the request asks otherwise, and says which."""

from __future__ import annotations

from core.config import get_settings
from model.network.precision import resolve
from testkit.images import make_image
from tests.service.test_worker import create_job
from worker.runner import run_job


def test_the_response_says_which_precision_answered(client, tmp_path):
    job_id = create_job(client, tmp_path, num_epochs=1)
    assert run_job(job_id, get_settings()) == "succeeded"
    assert client.get(f"/jobs/{job_id}").json()["progress"]["precision"] == resolve("auto")  # what it used
    files = [("image", ("a.jpg", make_image(0, 1))), ("image", ("b.jpg", make_image(1, 2)))]
    default = client.post("/predict", files=files, data={"job_id": job_id, "top_k": "2"})
    assert default.status_code == 200 and default.json()["precision"] == "float32"
    half = client.post(
        "/predict", files=files, data={"job_id": job_id, "top_k": "2", "precision": "bfloat16"}
    )
    assert half.status_code == 200 and half.json()["precision"] == "bfloat16"
    for a, b in zip(default.json()["predictions"], half.json()["predictions"]):
        assert a[0]["label"] == b[0]["label"] and abs(a[0]["probability"] - b[0]["probability"]) < 0.05
    bad = client.post("/predict", files=files, data={"job_id": job_id, "precision": "int8"})
    assert bad.status_code == 422 and "precision" in bad.json()["detail"]
