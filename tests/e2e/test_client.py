"""The Python client and `finetune client` against the real API and workers."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from client import ClientError, FinetuneClient
from testkit.images import class_folder_zip, make_image
from testkit.processes import ROOT

pytestmark = pytest.mark.e2e


def finetune_client(service, *args: str) -> subprocess.CompletedProcess:
    env = {**service.env, "FINETUNE_URL": service.url}
    command = [sys.executable, "-m", "cli.main", "client", *args]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_python_client_does_the_whole_flow(start_service, tmp_path):
    service = start_service()
    api = FinetuneClient(service.url)
    sent = []
    archive = class_folder_zip(tmp_path / "pets.zip", per_class=10)
    dataset = api.upload_dataset(
        archive, name="pets", progress=lambda done, total: sent.append((done, total))
    )
    assert sent[-1] == (archive.stat().st_size, archive.stat().st_size)
    dataset = api.wait_for_dataset(dataset["id"])
    assert dataset["status"] == "ready" and dataset["classes"] == ["cat", "dog"]
    job = api.create_job(dataset["id"], num_epochs=2, batch_size=4)
    events = list(api.follow(job["id"]))
    assert events[-1][0] == "end" and events[-1][1]["status"] == "succeeded"
    assert [data["epoch"] for name, data in events if name == "val"] == [1, 2]
    model = api.download_model(job["id"], tmp_path / "model.zip")
    assert "saved_model" in "".join(zipfile.ZipFile(model).namelist())
    image = tmp_path / "cat.jpg"
    image.write_bytes(make_image(0, 3))
    answer = api.predict([image], job_id=job["id"], top_k=2)
    assert {p["label"] for p in answer["predictions"][0]} == {"cat", "dog"}
    assert api.list_jobs(status="succeeded")["count"] == 1
    with pytest.raises(ClientError) as refused:
        api.create_job(dataset["id"], learning_rate=100)
    assert refused.value.status == 422 and "learning_rate" in refused.value.detail


def test_the_command_line_client(start_service, tmp_path):
    service = start_service()
    archive = class_folder_zip(tmp_path / "pets.zip", per_class=10)
    uploaded = finetune_client(service, "upload", str(archive))
    assert uploaded.returncode == 0, uploaded.stderr
    assert '"status": "ready"' in uploaded.stdout and "upload: 100%" in uploaded.stderr
    dataset_id = next(line for line in uploaded.stdout.splitlines() if '"id"' in line).split('"')[3]
    options = ["--epochs", "2", "--batch-size", "4", "--no-flip", "--follow"]
    submitted = finetune_client(service, "submit", dataset_id, *options)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.splitlines()[0]
    assert "epoch 2: val loss" in submitted.stdout + submitted.stderr and "succeeded" in submitted.stdout
    job = FinetuneClient(service.url).get_job(job_id)
    assert job["spec"]["augment_flip"] is False and job["spec"]["num_epochs"] == 2
    listed = finetune_client(service, "list")
    assert job_id in listed.stdout and "succeeded" in listed.stdout
    model = tmp_path / "m.zip"
    assert (
        finetune_client(service, "download", job_id, "--to", str(model)).returncode == 0
        and model.stat().st_size
    )
    tflite = finetune_client(
        service, "download", job_id, "--format", "tflite", "--to", str(tmp_path / "t.zip")
    )
    assert tflite.returncode == 0 and tflite.stdout.strip() == str(tmp_path / "t.zip"), tflite.stderr
    assert f"finetune-{job_id}-tflite/model.tflite" in zipfile.ZipFile(tmp_path / "t.zip").namelist()
    image = tmp_path / "dog.jpg"
    image.write_bytes(make_image(1, 9))
    predicted = finetune_client(service, "predict", str(image), "--job", job_id, "--top-k", "1")
    assert predicted.returncode == 0 and predicted.stdout.splitlines()[1].split()[-1] in ("cat", "dog")
    bad = finetune_client(service, "submit", dataset_id, "--learning-rate", "100")
    assert bad.returncode == 1 and "learning_rate" in bad.stderr
