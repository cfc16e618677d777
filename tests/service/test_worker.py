"""The worker's logic as plain functions against the real database: run, stream, lease, cancel, give back."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from core.config import get_settings
from core.db import get_sessionmaker, session_scope
from core.lease import JobLease
from core.tables import JobRow, TrainMetricRow, ValMetricRow
from testkit.service import ready_dataset, wait_for
from worker.runner import _active, run_job


def create_job(client, tmp_path, **spec) -> str:
    dataset = ready_dataset(client, tmp_path)
    response = client.post("/jobs", json={"dataset_id": dataset["id"], "batch_size": 4, **spec})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def count(table, job_id):
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(table).where(table.job_id == job_id))


def test_a_job_runs_to_success_and_streams_its_metrics(client, tmp_path):
    job_id = create_job(client, tmp_path, num_epochs=2)
    assert run_job(job_id, get_settings()) == "succeeded"
    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["best"]["epoch"] in (1, 2) and job["test"] is not None
    assert (
        job["progress"]["fraction"] == 1.0
        and job["progress"]["steps_per_epoch"] == 3
        and job["attempts"] == 1
    )
    assert job["started_at"] <= job["finished_at"]
    metrics = client.get(f"/jobs/{job_id}/metrics").json()
    assert [p["step"] for p in metrics["train"]] == [1, 2, 3, 4, 5, 6]
    assert [p["epoch"] for p in metrics["val"]] == [1, 2]
    assert {c["class"] for c in metrics["val"][0]["per_class"]} == {"cat", "dog"}
    assert metrics["val"][0]["confusion_matrix"] is None  # on request only (test_events.py)
    assert [
        p["step"] for p in client.get(f"/jobs/{job_id}/metrics", params={"after_step": 4}).json()["train"]
    ] == [5, 6]
    # a second delivery of the finished job does nothing
    assert run_job(job_id, get_settings()) == "skipped"
    assert count(TrainMetricRow, job_id) == 6 and count(ValMetricRow, job_id) == 2


def test_a_live_lease_keeps_a_second_delivery_out(client, tmp_path):
    job_id = create_job(client, tmp_path, num_epochs=1)
    other = JobLease(job_id, get_sessionmaker(), ttl_seconds=60)
    assert other.acquire()
    with session_scope() as session:  # pretend another worker holds it
        session.get(JobRow, job_id).lease_owner = "elsewhere:1:abc"
    assert run_job(job_id, get_settings()) == "skipped"
    with session_scope() as session:  # the other worker died: its lease runs out
        session.get(JobRow, job_id).lease_expires = time.time() - 1
    assert run_job(job_id, get_settings()) == "succeeded"


# long enough that a cancel or stop, seen within 0.2 s, lands mid-run: 6 epochs (18 steps) of this
# dataset now finish in well under a second, sometimes before the request is seen
EPOCHS = 30
STEPS = 3 * EPOCHS


def test_cancel_stops_a_running_job_within_a_step_and_resume_finishes_it(client, tmp_path):
    job_id = create_job(client, tmp_path, num_epochs=EPOCHS)
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("first", run_job(job_id, get_settings())))
    thread.start()
    wait_for(lambda: count(TrainMetricRow, job_id) >= 2, timeout=120)
    assert client.post(f"/jobs/{job_id}/cancel").json()["cancel_requested"] is True
    thread.join(timeout=60)
    assert outcome["first"] == "cancelled"
    job = client.get(f"/jobs/{job_id}").json()
    steps_done = count(TrainMetricRow, job_id)
    assert job["status"] == "cancelled" and steps_done < STEPS
    assert client.post(f"/jobs/{job_id}/resume").status_code == 202
    assert run_job(job_id, get_settings()) == "succeeded"
    steps = [p["step"] for p in client.get(f"/jobs/{job_id}/metrics").json()["train"]]
    assert steps == list(range(1, STEPS + 1))  # no step missing, none twice
    assert client.get(f"/jobs/{job_id}").json()["attempts"] == 1  # counted again from the resume


def test_a_stop_request_gives_the_job_back_to_the_queue(client, tmp_path):
    """What SIGTERM does on a worker: checkpoint, back to `queued`, a new message for another worker."""
    job_id = create_job(client, tmp_path, num_epochs=EPOCHS)
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("first", run_job(job_id, get_settings())))
    thread.start()
    wait_for(lambda: count(TrainMetricRow, job_id) >= 2 and job_id in _active, timeout=120)
    _active[job_id].request_stop()
    thread.join(timeout=60)
    assert outcome["first"] == "released"
    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "queued" and job["finished_at"] is None
    with session_scope() as session:
        row = session.get(JobRow, job_id)
        assert row.lease_owner is None
    assert run_job(job_id, get_settings()) == "succeeded"


def test_a_failure_is_a_readable_message(client, tmp_path):
    from core.storage import Storage

    job_id = create_job(client, tmp_path, num_epochs=1)
    dataset_id = client.get(f"/jobs/{job_id}").json()["dataset_id"]
    (Storage(get_settings()).dataset_dir(dataset_id) / "manifest.json").unlink()
    assert run_job(job_id, get_settings()) == "failed"
    job = client.get(f"/jobs/{job_id}").json()
    assert (
        job["status"] == "failed"
        and "not a prepared dataset" in job["error"]
        and "Traceback" not in job["error"]
    )
    assert client.post(f"/jobs/{job_id}/resume").status_code == 202


def test_cancelling_a_job_whose_worker_died_is_immediate(client, tmp_path):
    job_id = create_job(client, tmp_path, num_epochs=1)
    with session_scope() as session:
        row = session.get(JobRow, job_id)
        row.status, row.lease_owner, row.lease_expires = "running", "gone:1:abc", time.time() - 5
    cancelled = client.post(f"/jobs/{job_id}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    assert run_job(job_id, get_settings()) == "skipped"


def test_a_job_whose_worker_died_on_every_attempt_gives_up(client, tmp_path):
    job_id = create_job(client, tmp_path, num_epochs=1)
    with session_scope() as session:  # three starts, each ended by a dead worker: the lease ran out
        row = session.get(JobRow, job_id)
        row.status, row.attempts, row.lease_owner, row.lease_expires = (
            "running",
            3,
            "gone:1:x",
            time.time() - 1,
        )
    assert run_job(job_id, get_settings()) == "failed"
    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "failed" and job["error"].startswith("gave up after 3 attempts")
    assert count(TrainMetricRow, job_id) == 0  # nothing ran
    resumed = client.post(f"/jobs/{job_id}/resume").json()
    assert resumed["status"] == "queued" and resumed["attempts"] == 0
    assert run_job(job_id, get_settings()) == "succeeded"


def test_a_cancel_racing_a_worker_that_takes_the_job_is_a_request_not_an_overwrite(client, tmp_path):
    """The cancel read the job as queued; a worker took it before the cancel wrote."""
    from core.jobs import cancel_job, get_job

    job_id = create_job(client, tmp_path, num_epochs=1)
    with session_scope() as session:
        assert get_job(session, job_id, None).status == "queued"  # what the cancel saw
        assert JobLease(job_id, get_sessionmaker(), ttl_seconds=60).acquire()  # the worker, meanwhile
        row = cancel_job(session, job_id, None)
        assert (row.status, row.cancel_requested) == ("running", True)
    with session_scope() as session:
        stored = session.get(JobRow, job_id)
        assert (stored.status, stored.cancel_requested, stored.finished_at) == ("running", True, None)


def test_a_worker_that_lost_its_lease_writes_nothing(client, tmp_path):
    from model.training.reports import StepReport
    from worker.recorder import JobRecorder

    job_id = create_job(client, tmp_path, num_epochs=1)
    lease = JobLease(job_id, get_sessionmaker(), ttl_seconds=60)
    assert lease.acquire()
    recorder = JobRecorder(job_id, get_sessionmaker(), lease, flush_seconds=3600, cancel_poll_seconds=3600)
    with session_scope() as session:  # the lease expired and another worker took the job
        session.get(JobRow, job_id).lease_owner = "elsewhere:2:def"
    recorder.on_step(StepReport(1, 1, 1, 3, 0.7, 0.5, 10.0, time.time()))
    assert recorder.flush() is False and recorder.lease_lost and recorder.should_stop()
    assert recorder.close(timeout=5) is False
    assert count(TrainMetricRow, job_id) == 0
    with session_scope() as session:
        row = session.get(JobRow, job_id)
        assert row.lease_owner == "elsewhere:2:def" and row.progress == {}
        assert not lease.write_final(session, {"status": "succeeded"})  # nor the outcome
    assert client.get(f"/jobs/{job_id}").json()["status"] == "running"
