"""Faults injected for real: kill -9, SIGTERM, a Redis flush, a short redelivery timeout, and a
PostgreSQL stop."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis

from testkit.service import upload_and_wait, wait_for, wait_until_finished
from tests.service.conftest import REDIS

pytestmark = pytest.mark.e2e
LONG_JOB = {"num_epochs": 6, "batch_size": 2, "learning_rate": 0.01, "optimizer": "momentum"}


def steps_of(http, job_id) -> list[int]:
    return [p["step"] for p in http.get(f"/jobs/{job_id}/metrics").json()["train"]]


def job(http, job_id) -> dict:
    return http.get(f"/jobs/{job_id}").json()


def uninterrupted_weights(service_env, dataset_id: str, spec: dict, tmp_path: Path) -> dict:
    """What the same job gives when nothing interrupts it: the engine run directly."""
    from model.data.dataset import PreparedDataset
    from model.exports.weights import read_weights
    from model.training.loop import train
    from model.training.spec import TrainSpec

    dataset = PreparedDataset(Path(service_env["FINETUNE_DATA_DIR"]) / "datasets" / dataset_id)
    result = train(
        TrainSpec(**spec),
        dataset,
        tmp_path / "reference",
        imagenet_weights=service_env["FINETUNE_WEIGHTS_PATH"],
        cache_dir=tmp_path / "reference-cache",
    )
    return read_weights(result.export_dir)


def test_kill_9_mid_epoch_loses_nothing(start_service, service_env, tmp_path):
    service = start_service(lease_seconds=3, reconcile_seconds=1)
    http = httpx.Client(base_url=service.url, timeout=60)
    dataset = upload_and_wait(http, tmp_path, per_class=10)
    job_id = http.post("/jobs", json={"dataset_id": dataset["id"], **LONG_JOB}).json()["id"]
    steps_per_epoch = 6  # 12 training images, batches of 2
    wait_for(lambda: len(steps_of(http, job_id)) >= steps_per_epoch + 2, timeout=180)
    victim = service.processes[-1]
    victim.stop(signal.SIGKILL)
    assert victim.process.returncode == -signal.SIGKILL
    service.add_worker()  # a restarted worker; the reconciler finds the job's lease expired
    finished = wait_until_finished(http, job_id)
    assert finished["status"] == "succeeded", service.logs()
    assert finished["attempts"] == 2
    assert steps_of(http, job_id) == list(range(1, 6 * steps_per_epoch + 1))  # none missing, none twice
    from model.exports.weights import read_weights

    served = read_weights(Path(service_env["FINETUNE_DATA_DIR"]) / "runs" / job_id / "export")
    reference = uninterrupted_weights(service_env, dataset["id"], LONG_JOB, tmp_path)
    for name in ("fc7", "fc8"):
        assert np.allclose(served[name][0], reference[name][0], atol=1e-5), name


def test_a_job_that_kills_its_worker_every_time_gives_up(start_service, tmp_path):
    """With FINETUNE_MAX_ATTEMPTS=1, one worker death is the limit: the job ends failed, not re-run."""
    service = start_service(lease_seconds=3, reconcile_seconds=1, max_attempts=1)
    http = httpx.Client(base_url=service.url, timeout=60)
    dataset = upload_and_wait(http, tmp_path, per_class=10)
    job_id = http.post("/jobs", json={"dataset_id": dataset["id"], **LONG_JOB}).json()["id"]
    wait_for(lambda: len(steps_of(http, job_id)) >= 2, timeout=180)
    service.processes[-1].stop(signal.SIGKILL)
    service.add_worker()
    finished = wait_until_finished(http, job_id)
    assert finished["status"] == "failed", service.logs()
    assert finished["error"].startswith("gave up after 1 attempt:") and finished["attempts"] == 1


def test_sigterm_checkpoints_gives_back_and_another_worker_finishes(start_service, tmp_path):
    service = start_service(reconcile_seconds=1)
    http = httpx.Client(base_url=service.url, timeout=60)
    dataset = upload_and_wait(http, tmp_path, per_class=10)
    job_id = http.post("/jobs", json={"dataset_id": dataset["id"], **LONG_JOB}).json()["id"]
    wait_for(lambda: len(steps_of(http, job_id)) >= 8, timeout=180)
    worker = service.processes[-1]
    started = time.monotonic()
    worker.stop(signal.SIGTERM, timeout=90)
    assert time.monotonic() - started < 60, worker.output()[-3000:]
    assert worker.process.returncode == 0, worker.output()[-3000:]
    given_back = job(http, job_id)
    assert given_back["status"] == "queued" and given_back["finished_at"] is None
    service.add_worker()
    finished = wait_until_finished(http, job_id)
    assert finished["status"] == "succeeded", service.logs()
    assert steps_of(http, job_id) == list(range(1, 37))


def test_redis_flush_loses_no_job(start_service, tmp_path):
    service = start_service(reconcile_seconds=1)
    http = httpx.Client(base_url=service.url, timeout=60)
    dataset = upload_and_wait(http, tmp_path, per_class=10)
    running = http.post("/jobs", json={"dataset_id": dataset["id"], **LONG_JOB, "num_epochs": 3}).json()["id"]
    queued = [
        http.post("/jobs", json={"dataset_id": dataset["id"], "num_epochs": 1, "seed": i}).json()["id"]
        for i in range(2)
    ]
    wait_for(lambda: job(http, running)["status"] == "running", timeout=120)
    redis.Redis.from_url(REDIS).flushdb()  # every queued message is gone
    for job_id in [running, *queued]:
        finished = wait_until_finished(http, job_id)
        assert finished["status"] == "succeeded", service.logs()
        assert finished["attempts"] == 1


def test_a_redelivered_message_never_runs_a_job_twice(start_service, tmp_path):
    service = start_service(workers=2, broker_visibility_timeout=2)
    http = httpx.Client(base_url=service.url, timeout=60)
    dataset = upload_and_wait(http, tmp_path, per_class=10)
    # long enough to outlast the 2 s timeout and the 1 s restore interval several times over on a
    # fast host: a 4-epoch job could be acknowledged before anything redelivered it
    epochs = 16
    spec = {"dataset_id": dataset["id"], **LONG_JOB, "num_epochs": epochs}
    job_id = http.post("/jobs", json=spec).json()["id"]
    finished = wait_until_finished(http, job_id)
    assert finished["status"] == "succeeded" and finished["attempts"] == 1, service.logs()
    skipped = sum(
        p.output().count(f"job {job_id}: not queued, or running under another worker's lease")
        for p in service.processes
    )
    assert skipped >= 1, (
        "the short visibility timeout should have redelivered the message:\n" + service.logs()
    )
    assert steps_of(http, job_id) == list(range(1, 6 * epochs + 1))  # 12 training images, batches of 2


@pytest.mark.skipif(
    shutil.which("pg_ctlcluster") is None, reason="needs pg_ctlcluster to stop and start PostgreSQL"
)
def test_postgres_stopped_mid_job(start_service, tmp_path):
    service = start_service()
    http = httpx.Client(base_url=service.url, timeout=60)
    dataset = upload_and_wait(http, tmp_path, per_class=10)
    job_id = http.post("/jobs", json={"dataset_id": dataset["id"], **LONG_JOB}).json()["id"]
    wait_for(lambda: len(steps_of(http, job_id)) >= 4, timeout=180)
    cluster = Path("/etc/postgresql").iterdir().__next__().name
    control = ["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main"]
    subprocess.run([*control, "stop", "-m", "fast"], check=True)
    try:
        time.sleep(3)
        during = http.get(f"/jobs/{job_id}")
        assert during.status_code == 503 and during.json()["error"] == "ServiceUnavailable"
        ready = http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("unreachable")
    finally:
        subprocess.run([*control, "start"], check=True)
    wait_for(lambda: http.get("/readyz").status_code == 200, timeout=60)
    finished = wait_until_finished(http, job_id)
    assert finished["status"] == "succeeded", service.logs()
    assert steps_of(http, job_id) == list(range(1, 37))  # buffered while the database was away, none lost
