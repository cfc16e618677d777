"""The train worker's container health check answers while a job runs, and fails when it hangs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from testkit.processes import ROOT
from testkit.service import upload_and_wait, wait_for

pytestmark = pytest.mark.e2e


def worker_alive(env: dict, max_age: float) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "worker-alive",
        "--queue",
        "train",
        "--max-age",
        str(max_age),
    ]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_the_heartbeat_beats_during_a_job_and_stops_with_the_worker(start_service, tmp_path):
    service = start_service()
    http = httpx.Client(base_url=service.url, timeout=30)
    dataset = upload_and_wait(http, tmp_path)
    spec = {"dataset_id": dataset["id"], "num_epochs": 30, "batch_size": 2}
    job_id = http.post("/jobs", json=spec).json()["id"]
    wait_for(lambda: (http.get(f"/jobs/{job_id}").json()["progress"]["step"] or 0) >= 2)
    time.sleep(6)  # longer than the beat interval, all of it inside the running job
    during = worker_alive(service.env, max_age=6)
    assert during.returncode == 0 and "alive" in during.stdout, during.stdout + during.stderr
    worker = service.processes[-1].process
    os.kill(worker.pid, signal.SIGSTOP)  # a hung worker
    try:
        time.sleep(4)
        hung = worker_alive(service.env, max_age=3)
        assert hung.returncode == 1 and "no heartbeat" in hung.stderr + hung.stdout
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    http.post(f"/jobs/{job_id}/cancel")
