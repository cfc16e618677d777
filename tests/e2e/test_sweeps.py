"""A sweep on the real processes: trials fan out over two train workers and the best one is named."""

from __future__ import annotations

import pytest

from client import FinetuneClient
from testkit.images import class_folder_zip, make_image
from tests.e2e.test_client import finetune_client

pytestmark = pytest.mark.e2e


def test_a_sweep_fans_out_over_the_train_workers(start_service, tmp_path):
    service = start_service(workers=2)
    api = FinetuneClient(service.url)
    dataset = api.upload_dataset(class_folder_zip(tmp_path / "pets.zip", per_class=10))
    dataset = api.wait_for_dataset(dataset["id"])
    grid = {"learning_rate": [0.01, 0.001], "dropout_rate": [0.3, 0.5]}
    sweep = api.create_sweep(dataset["id"], grid=grid, num_epochs=2, batch_size=4, augment_flip=False)
    assert len(sweep["trials"]) == 4 and sweep["status"] == "running"

    done = api.wait_for_sweep(sweep["id"], timeout=600, interval=0.5)
    assert done["status"] == "succeeded", done
    jobs = [api.get_job(t["job_id"]) for t in done["trials"]]
    assert all(j["status"] == "succeeded" and j["sweep_id"] == sweep["id"] for j in jobs)
    overlapping = any(
        a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]
        for i, a in enumerate(jobs)
        for b in jobs[i + 1 :]
    )
    assert overlapping, "no two trials ran at the same time on the two workers"
    best = max(done["trials"], key=lambda t: (t["best_val_accuracy"], -t["best_val_loss"]))
    assert done["best_job_id"] == best["job_id"]
    answer = api.predict([make_image(0, 1)], job_id=done["best_job_id"])
    assert len(answer["predictions"][0]) == 2  # the best trial serves like any job

    # the command line: a seeded random sweep, followed to the end, then its table
    dataset_id = dataset["id"]
    options = ["--random", "2", "--space", "seed=int:0:1000", "--epochs", "1", "--batch-size", "4"]
    started = finetune_client(service, "sweep", dataset_id, *options, "--follow")
    assert started.returncode == 0, started.stderr
    sweep_id = started.stdout.splitlines()[0]
    assert f"sweep {sweep_id}: succeeded" in started.stdout
    table = finetune_client(service, "sweep-status", sweep_id)
    assert table.returncode == 0 and sum(line.startswith("* ") for line in table.stdout.splitlines()) == 1
    refused = finetune_client(service, "sweep", dataset_id, "--grid", "learning_rate=0.1,100")
    assert refused.returncode == 1 and "trial 2 (learning_rate=100)" in refused.stderr
    assert finetune_client(service, "sweep-cancel", sweep_id).returncode == 1  # nothing left to cancel
