"""One state model: every writer moves rows through `core.states.transition`; terminal states
clear the lease; deletes mark, commit, then remove; a job and its dataset's delete never interleave."""

from __future__ import annotations

import threading

from sqlalchemy import select, text

from core.config import get_settings
from core.datasets import delete_dataset
from core.db import get_sessionmaker, session_scope
from core.errors import DatasetInUse
from core.jobs import create_job
from core.lease import JobLease, worker_id
from core.reconcile import reconcile
from core.storage import Storage
from core.tables import DatasetRow, JobRow
from model.training.spec import TrainSpec
from testkit.service import ready_dataset, wait_for
from tests.service.test_worker import create_job as post_job


def test_a_stalled_holder_cannot_write_over_a_cancel_that_found_its_lease_expired(client, tmp_path):
    job_id = post_job(client, tmp_path, num_epochs=1)
    lease = JobLease(job_id, get_sessionmaker(), ttl_seconds=0.001)  # this process stalls past its lease
    assert lease.acquire()
    wait_for(lambda: client.get(f"/jobs/{job_id}").json()["status"] == "running", timeout=5)
    cancelled = client.post(f"/jobs/{job_id}/cancel").json()
    assert cancelled["status"] == "cancelled"
    with session_scope() as session:
        row = session.get(JobRow, job_id)
        assert row.lease_owner is None and row.lease_expires is None  # a terminal state clears it
    with session_scope() as session:  # the holder wakes up: its renewal and its outcome find nothing
        assert not lease.renew(session)
        assert not lease.write_final(session, {"status": "succeeded"})
    assert client.get(f"/jobs/{job_id}").json()["status"] == "cancelled"


def test_no_writer_moves_a_terminal_row_back(client, tmp_path):
    job_id = post_job(client, tmp_path, num_epochs=1)
    assert client.post(f"/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    lease = JobLease(job_id, get_sessionmaker(), ttl_seconds=60)
    assert not lease.acquire()  # a late broker message for a cancelled job
    with session_scope() as session:
        session.execute(
            text("UPDATE jobs SET lease_owner = :me WHERE id = :id"), {"me": worker_id(), "id": job_id}
        )
    with session_scope() as session:  # even a row that names this worker: only a running row is held
        assert not lease.write_final(session, {"status": "succeeded"})
    assert client.get(f"/jobs/{job_id}").json()["status"] == "cancelled"


def crash_after_marking(table, row_id: str) -> None:
    """What a deleter leaves when it stops between its commit and the file removal."""
    with session_scope() as session:
        session.get(table, row_id).status = "deleting"


def test_a_delete_interrupted_after_its_commit_is_finished_by_the_reconciler(client, tmp_path):
    job_id = post_job(client, tmp_path, num_epochs=1)
    storage = Storage(get_settings())
    run_dir = storage.run_dir(job_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "events.jsonl").write_text("{}\n")
    dataset_id = client.get(f"/jobs/{job_id}").json()["dataset_id"]
    client.post(f"/jobs/{job_id}/cancel")
    crash_after_marking(JobRow, job_id)
    assert client.get(f"/jobs/{job_id}").status_code == 404  # gone for clients at once
    assert client.get("/jobs").json()["count"] == 0
    assert storage.dataset_dir(dataset_id).is_dir()
    crash_after_marking(DatasetRow, dataset_id)
    assert client.get(f"/datasets/{dataset_id}").status_code == 404
    assert client.get("/datasets").json()["count"] == 0
    finished = reconcile()
    assert finished["deleted_jobs"] == [job_id] and finished["deleted_datasets"] == [dataset_id]
    assert not run_dir.exists() and not storage.dataset_dir(dataset_id).exists()
    with session_scope() as session:
        assert session.get(JobRow, job_id) is None and session.get(DatasetRow, dataset_id) is None


def test_a_sweep_delete_is_all_or_nothing(client, tmp_path):
    dataset = ready_dataset(client, tmp_path)
    sweep = client.post("/sweeps", json={"dataset_id": dataset["id"], "grid": {"seed": [1, 2, 3]}}).json()
    trial_ids = [trial["job_id"] for trial in sweep["trials"]]
    storage = Storage(get_settings())
    for trial_id in trial_ids:
        storage.run_dir(trial_id).mkdir(parents=True, exist_ok=True)
    with session_scope() as session:
        session.get(JobRow, trial_ids[-1]).status = "running"  # the last trial started meanwhile
    response = client.delete(f"/sweeps/{sweep['id']}")
    assert response.status_code == 409, response.text
    assert all(storage.run_dir(trial_id).is_dir() for trial_id in trial_ids)
    assert [t["status"] for t in client.get(f"/sweeps/{sweep['id']}").json()["trials"]] == ["queued"] * 2 + [
        "running"
    ]
    with session_scope() as session:
        session.get(JobRow, trial_ids[-1]).status = "cancelled"
    assert client.delete(f"/sweeps/{sweep['id']}").status_code == 204
    assert not any(storage.run_dir(trial_id).exists() for trial_id in trial_ids)
    with session_scope() as session:
        assert session.scalars(select(JobRow.id).where(JobRow.id.in_(trial_ids))).all() == []


def test_creating_a_job_and_deleting_its_dataset_never_interleave(client, tmp_path):
    """A job created while its dataset is deleted: the delete waits for the job's commit, then
    refuses (the dataset is in use); the job never ends up pointing at no dataset."""
    dataset = ready_dataset(client, tmp_path)
    settings, storage = get_settings(), Storage(get_settings())
    creating = get_sessionmaker()()
    create_job(creating, settings, None, dataset["id"], TrainSpec(num_epochs=1))  # not committed yet
    outcome = {}

    def delete():
        with get_sessionmaker()() as deleting:
            try:
                delete_dataset(deleting, storage, dataset["id"], None)
                outcome["deleted"] = True
            except DatasetInUse as exc:
                outcome["refused"] = str(exc)

    deleter = threading.Thread(target=delete)
    deleter.start()
    waiting_on_lock = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    with session_scope() as session:
        wait_for(lambda: session.scalar(waiting_on_lock) or session.rollback(), timeout=10, interval=0.05)
    creating.commit()
    creating.close()
    deleter.join(timeout=30)
    assert "refused" in outcome and "used by 1 queued or running job" in outcome["refused"], outcome
    with session_scope() as session:
        assert session.scalar(select(JobRow.dataset_id)) == dataset["id"]
