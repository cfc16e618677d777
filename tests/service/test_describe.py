"""Names and notes on jobs and datasets; a job keeps its dataset's class names after the dataset goes."""

from __future__ import annotations

from core.config import get_settings
from tests.service.test_worker import create_job
from worker.runner import run_job


def test_a_job_is_named_noted_and_keeps_its_class_names(client, tmp_path):
    job_id = create_job(client, tmp_path, num_epochs=1, name="baseline", note="fc7+fc8, defaults")
    job = client.get(f"/jobs/{job_id}").json()
    assert (job["name"], job["note"], job["classes"]) == ("baseline", "fc7+fc8, defaults", ["cat", "dog"])
    assert "name" not in job["spec"] and "note" not in job["spec"]  # what runs is the spec alone

    renamed = client.patch(f"/jobs/{job_id}", json={"name": "baseline 2"})
    assert renamed.status_code == 200 and renamed.json()["note"] == "fc7+fc8, defaults"  # only what was sent
    assert client.patch(f"/jobs/{job_id}", json={"note": None}).json()["note"] is None
    refused = client.patch(f"/jobs/{job_id}", json={"learning_rate": 0.1})
    assert refused.status_code == 422 and "learning_rate" in refused.json()["detail"]
    assert client.patch("/jobs/0123456789abcdef0123456789abcdef", json={"name": "x"}).status_code == 404

    assert run_job(job_id, get_settings()) == "succeeded"
    dataset_id = job["dataset_id"]
    assert client.delete(f"/datasets/{dataset_id}").status_code == 204
    kept = client.get(f"/jobs/{job_id}").json()
    assert kept["dataset_id"] is None and kept["classes"] == ["cat", "dog"] and kept["name"] == "baseline 2"


def test_a_dataset_is_renamed_and_noted(client, tmp_path):
    job_id = create_job(client, tmp_path, num_epochs=1)
    dataset_id = client.get(f"/jobs/{job_id}").json()["dataset_id"]
    changed = client.patch(
        f"/datasets/{dataset_id}", json={"name": "pets, second pass", "note": "relabelled"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["note"]) == ("pets, second pass", "relabelled")
    assert client.patch(f"/datasets/{dataset_id}", json={"note": None}).json()["note"] is None
    nameless = client.patch(f"/datasets/{dataset_id}", json={"name": None})
    assert nameless.status_code == 422 and "name" in nameless.json()["detail"]
    assert client.get(f"/datasets/{dataset_id}").json()["name"] == "pets, second pass"
