"""The Python client and `finetune client` against the real API and workers."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import zipfile

import pytest

from client import ClientError, FinetuneClient
from testkit.images import class_folder_zip, make_image
from testkit.processes import ROOT, free_port

pytestmark = pytest.mark.e2e


def finetune_client(service, *args: str) -> subprocess.CompletedProcess:
    env = {**service.env, "FINETUNE_URL": service.url}
    command = [sys.executable, "-m", "cli.main", "client", *args]
    return subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )


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
    service = start_service(max_predict_images=8)
    archive = class_folder_zip(tmp_path / "pets.zip", per_class=10)
    uploaded = finetune_client(service, "upload", str(archive))
    assert uploaded.returncode == 0, uploaded.stderr
    assert '"status": "ready"' in uploaded.stdout and "upload: 100%" in uploaded.stderr
    dataset_id = next(line for line in uploaded.stdout.splitlines() if '"id"' in line).split('"')[3]
    options = ["--epochs", "2", "--batch-size", "4", "--no-flip", "--name", "first-try", "--follow"]
    submitted = finetune_client(service, "submit", dataset_id, *options)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.splitlines()[0]
    assert "epoch 2: val loss" in submitted.stdout + submitted.stderr and "succeeded" in submitted.stdout
    job = FinetuneClient(service.url).get_job(job_id)
    assert job["spec"]["augment_flip"] is False and job["spec"]["num_epochs"] == 2

    header, row = finetune_client(service, "list").stdout.splitlines()
    assert header.split() == ["ID", "NAME", "STATUS", "DATASET", "BEST", "VAL", "ACC", "CREATED", "(UTC)"]
    assert row.split()[:4] == [
        job_id,
        "first-try",
        "succeeded",
        "pets.zip",
    ]  # the dataset: named after its file
    listed = json.loads(finetune_client(service, "list", "--json").stdout)
    assert [item["id"] for item in listed] == [job_id]

    tflite = finetune_client(
        service, "download", job_id, "--format", "tflite", "--to", str(tmp_path / "t.zip")
    )
    assert tflite.returncode == 0 and tflite.stdout.strip() == str(tmp_path / "t.zip"), tflite.stderr
    assert "converting tflite…" in tflite.stderr and "download: 100%" in tflite.stderr
    assert f"finetune-{job_id}-tflite/model.tflite" in zipfile.ZipFile(tmp_path / "t.zip").namelist()

    folder = tmp_path / "photos"
    for i in range(20):  # more than one request takes here (8): the client sends fewer at a time
        (folder / f"set{i % 2}").mkdir(parents=True, exist_ok=True)
        (folder / f"set{i % 2}" / f"{i:02d}.jpg").write_bytes(make_image(i % 2, i))
    (folder / "notes.txt").write_text("not an image")
    table = tmp_path / "predictions.csv"
    predicted = finetune_client(
        service, "predict", str(folder), "--job", job_id, "--top-k", "2", "--csv", str(table)
    )
    assert predicted.returncode == 0, predicted.stderr
    lines = predicted.stdout.splitlines()
    assert len(lines) == 20 and all(line.split("\t")[1].split()[0] in ("cat", "dog") for line in lines)
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 40 and {row["rank"] for row in rows} == {"1", "2"}

    bad = finetune_client(service, "submit", dataset_id, "--learning-rate", "100")
    assert bad.returncode == 1 and "learning_rate" in bad.stderr


def test_the_command_line_client_cancels_and_deletes(start_service, tmp_path):
    service = start_service()
    api = FinetuneClient(service.url)
    dataset = api.wait_for_dataset(
        api.upload_dataset(class_folder_zip(tmp_path / "d.zip", per_class=10))["id"]
    )
    job = api.create_job(dataset["id"], num_epochs=200, batch_size=2)
    cancelled = finetune_client(service, "cancel", job["id"], "--wait")
    assert cancelled.returncode == 0, cancelled.stderr
    first, *rest = cancelled.stdout.splitlines()
    assert first in ("cancel requested", "cancelled") and (rest or [first])[-1] == "cancelled"
    assert api.get_job(job["id"])["status"] == "cancelled"

    in_use = finetune_client(service, "delete", "dataset", dataset["id"], "--yes")
    assert in_use.returncode == 0, in_use.stderr  # the job ended: nothing holds the dataset
    assert (
        finetune_client(service, "delete", "job", job["id"], "--yes").stdout == f"deleted job {job['id']}\n"
    )
    with pytest.raises(ClientError) as gone:
        api.get_job(job["id"])
    assert gone.value.status == 404
    refused = finetune_client(service, "delete", "job", job["id"])  # asks first; no answer: nothing happens
    assert refused.returncode == 1 and "delete 1 job and their files?" in refused.stdout


def test_an_unreachable_service_is_one_line_and_status_1(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "FINETUNE_URL": url}
    for args in (["list"], ["cancel", "abc"], ["download", "abc", "--to", str(tmp_path / "m.zip")]):
        done = subprocess.run([sys.executable, "-m", "cli.main", "client", *args], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 1
        assert done.stderr.splitlines() == [f"Error: cannot reach {url}: connection refused"], done.stderr
