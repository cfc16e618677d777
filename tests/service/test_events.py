"""Event streams and curves: time order, resumable ids, pages, matrices on request, final progress."""

from __future__ import annotations

from core.config import get_settings
from testkit.service import read_sse
from tests.service.test_worker import create_job
from worker.runner import run_job


def finished_job(client, tmp_path) -> str:
    job_id = create_job(client, tmp_path, num_epochs=3)  # 3 steps per epoch
    assert run_job(job_id, get_settings()) == "succeeded"
    return job_id


def stream(client, job_id, **headers) -> list[tuple]:
    with client.stream("GET", f"/jobs/{job_id}/events", headers=headers) as response:
        assert response.status_code == 200
        return read_sse(response, with_ids=True)


def test_events_come_in_time_order_with_ids_and_resume_after_the_last_one(client, tmp_path):
    job_id = finished_job(client, tmp_path)
    events = stream(client, job_id)
    curve = [
        (name, data.get("step") or data["epoch"]) for name, data, _ in events if name in ("train", "val")
    ]
    assert curve == [
        ("train", 1), ("train", 2), ("train", 3), ("val", 1),
        ("train", 4), ("train", 5), ("train", 6), ("val", 2),
        ("train", 7), ("train", 8), ("train", 9), ("val", 3),
    ]  # fmt: skip
    assert all(event_id for name, _, event_id in events if name in ("train", "val"))
    assert events[-1][0] == "end" and events[-1][1]["status"] == "succeeded"
    fourth_id = [event_id for name, _, event_id in events if name in ("train", "val")][3]  # after val 1
    resumed = stream(client, job_id, **{"Last-Event-ID": fourth_id})
    first = [
        (name, data.get("step") or data["epoch"]) for name, data, _ in resumed if name in ("train", "val")
    ]
    assert first[:2] == [("train", 4), ("train", 5)] and len(first) == 8
    assert "confusion_matrix" not in [
        k for name, data, _ in events if name == "val" for k, v in data.items() if v
    ]


def test_metrics_are_paged_and_matrices_come_on_request(client, tmp_path):
    job_id = finished_job(client, tmp_path)
    page = client.get(f"/jobs/{job_id}/metrics", params={"limit": 4}).json()
    assert [p["step"] for p in page["train"]] == [1, 2, 3, 4] and page["more"] is True
    assert [p["epoch"] for p in page["val"]] == [1]  # epoch 2 is not fully in this page
    assert page["val"][0]["confusion_matrix"] is None
    rest = client.get(f"/jobs/{job_id}/metrics", params={"after_step": 4, "after_epoch": 1}).json()
    assert [p["step"] for p in rest["train"]] == [5, 6, 7, 8, 9] and rest["more"] is False
    assert [p["epoch"] for p in rest["val"]] == [2, 3]
    full = client.get(f"/jobs/{job_id}/metrics", params={"confusion_matrix": "true"}).json()
    assert sum(map(sum, full["val"][0]["confusion_matrix"])) == 4


def test_progress_is_consistent_before_and_after_the_end(client, tmp_path):
    queued = create_job(client, tmp_path, num_epochs=2)
    assert client.get(f"/jobs/{queued}").json()["progress"]["num_epochs"] == 2
    cancelled = client.post(f"/jobs/{queued}/cancel").json()["progress"]
    assert (
        cancelled["num_epochs"] == 2
        and cancelled["phase"] == "cancelled"
        and cancelled["eta_seconds"] is None
    )
    done = client.get(f"/jobs/{finished_job(client, tmp_path)}").json()["progress"]
    assert done["phase"] == "done" and done["eta_seconds"] is None and done["fraction"] == 1.0
