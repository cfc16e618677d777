"""`finetune up` owns its workers: however it is stopped, none is left behind."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from model.exports.weights import write_synthetic_weights
from testkit.processes import start_embedded, wait_for_log
from testkit.service import upload_and_wait, wait_for

pytestmark = pytest.mark.e2e


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_up_stops_its_workers(tmp_path, sig):
    up, _ = start_embedded(tmp_path / "data", tmp_path / "up.log")
    try:
        deadline = time.monotonic() + 60
        while len(workers := children_of(up.process.pid)) < 2:
            assert time.monotonic() < deadline, up.output()[-3000:]
            time.sleep(0.2)
        up.process.send_signal(sig)  # to `up` alone, as `kill <pid>` does; not to its process group
        up.process.wait(timeout=90)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in workers if alive(pid)] == [], up.output()[-3000:]
    finally:
        up.stop()


def job_row(data_dir: Path, job_id: str) -> dict:
    """The job as the embedded database holds it, read while no service runs."""
    with sqlite3.connect(data_dir / "finetune.db") as connection:
        connection.row_factory = sqlite3.Row
        row = dict(connection.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())
        row["last_step"] = connection.execute(
            "SELECT max(step) FROM train_metrics WHERE job_id = ?", (job_id,)
        ).fetchone()[0]
    return row


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_up_mid_job_hands_it_back_and_the_next_up_resumes_it(tmp_path, sig):
    """Stop `up` while a job trains: the job checkpoints at its next step and goes back to the queue
    with its lease cleared and `attempts` unchanged, everything exits without a traceback, and the
    next `up` resumes it at once from that checkpoint."""
    data_dir = tmp_path / "data"
    write_synthetic_weights(data_dir / "bvlc_alexnet.npz")
    up, url = start_embedded(data_dir, tmp_path / "up.log")
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            dataset = upload_and_wait(http, tmp_path, per_class=10)
            job = http.post("/jobs", json={"dataset_id": dataset["id"], "num_epochs": 400, "batch_size": 4})
            job_id = job.json()["id"]
            wait_for(
                lambda: (http.get(f"/jobs/{job_id}").json()["progress"].get("step") or 0) >= 5, timeout=180
            )
        if sig == signal.SIGINT:
            os.killpg(up.process.pid, sig)  # Ctrl-C: the terminal signals `up` and its workers alike
        else:
            up.process.send_signal(sig)  # `kill <pid>`: `up` alone, which stops its workers
        up.process.wait(timeout=60)
    finally:
        up.stop()
    first_run = up.output()
    assert "Traceback" not in first_run, first_run[-4000:]
    stopped = job_row(data_dir, job_id)
    assert stopped["status"] == "queued" and stopped["lease_owner"] is None and stopped["attempts"] == 0, (
        stopped
    )
    again, url = start_embedded(data_dir, tmp_path / "again.log")
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            wait_for(lambda: http.get(f"/jobs/{job_id}").json()["status"] == "running", timeout=60)
            resumed = wait_for_log(
                again, re.compile(r"resumed from its checkpoint after step (\d+)"), timeout=60
            )
            assert http.post(f"/jobs/{job_id}/cancel").status_code == 200
            assert http.get(f"/jobs/{job_id}").json()["attempts"] == 1
    finally:
        again.stop()
    assert int(resumed.group(1)) >= stopped["last_step"] - 1  # at most one step lost
