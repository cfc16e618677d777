"""Sweeps against the real database: trials are ordinary jobs, features are computed once,
status and best trial come from the trials' rows, and bad requests leave nothing behind."""

from __future__ import annotations

from types import SimpleNamespace

from core.config import get_settings
from core.db import session_scope
from core.storage import Storage
from core.sweeps import best_trial
from core.tables import JobRow
from testkit.service import prepare_now, ready_dataset, upload_dataset
from worker.runner import run_job


def test_a_grid_sweep_runs_its_trials_as_jobs_and_picks_the_best(client, tmp_path):
    dataset = upload_dataset(client, tmp_path, size=(67, 59))  # images no other test uses: a cold cache
    assert prepare_now(dataset["id"]) == "ready"
    grid = {"learning_rate": [0.01, 1e-6], "dropout_rate": [0.2, 0.6]}
    body = {"dataset_id": dataset["id"], "base": {"num_epochs": 2, "batch_size": 4}, "grid": grid}
    response = client.post("/sweeps", json=body)
    assert response.status_code == 202, response.text
    sweep = response.json()
    assert sweep["status"] == "running" and sweep["best_job_id"] is None and sweep["grid"] == grid
    assert [t["params"] for t in sweep["trials"]] == [
        {"learning_rate": 0.01, "dropout_rate": 0.2},
        {"learning_rate": 0.01, "dropout_rate": 0.6},
        {"learning_rate": 1e-6, "dropout_rate": 0.2},
        {"learning_rate": 1e-6, "dropout_rate": 0.6},
    ]
    listed = client.get("/jobs", params={"sweep_id": sweep["id"]}).json()
    assert listed["count"] == 4 and {j["sweep_id"] for j in listed["data"]} == {sweep["id"]}
    for job in listed["data"]:
        assert (
            job["spec"]["num_epochs"] == 2
            and job["spec"]["learning_rate"] == job["sweep_params"]["learning_rate"]
        )

    for trial in sweep["trials"]:
        assert run_job(trial["job_id"], get_settings()) == "succeeded"
    cache = Storage(get_settings()).feature_cache_dir
    entries = [p for p in cache.iterdir() if p.is_dir()] if cache.is_dir() else []
    with session_scope() as session:
        computed = [session.get(JobRow, t["job_id"]).progress.get("phase_total") for t in sweep["trials"]]
    assert computed[0] > 0 and not any(computed[1:])  # the first trial computed them, the rest read
    assert len(entries) >= 1

    done = client.get(f"/sweeps/{sweep['id']}").json()
    assert done["status"] == "succeeded" and all(t["fraction"] == 1.0 for t in done["trials"])
    trials = done["trials"]
    want = max(trials, key=lambda t: (t["best_val_accuracy"], -t["best_val_loss"]))
    assert done["best_job_id"] == want["job_id"]
    for t in trials:
        job = client.get(f"/jobs/{t['job_id']}").json()
        assert t["best_val_accuracy"] == job["best"]["val_accuracy"] and t["status"] == "succeeded"
    assert client.get("/sweeps").json()["data"][0]["id"] == sweep["id"]

    assert client.post(f"/sweeps/{sweep['id']}/cancel").status_code == 409  # nothing left to cancel
    assert client.delete(f"/sweeps/{sweep['id']}").status_code == 204
    assert client.get(f"/sweeps/{sweep['id']}").status_code == 404
    assert all(client.get(f"/jobs/{t['job_id']}").status_code == 404 for t in trials)
    assert not any(Storage(get_settings()).run_dir(t["job_id"]).exists() for t in trials)


def test_random_sweeps_draw_reproducibly_within_the_space(client, tmp_path):
    dataset = ready_dataset(client, tmp_path)
    space = {
        "learning_rate": {"log_uniform": [1e-5, 1e-1]},
        "num_epochs": {"int": [1, 3]},
        "dropout_rate": {"uniform": [0.1, 0.6]},
        "optimizer": {"choice": ["sgd", "adam"]},
    }
    body = {"dataset_id": dataset["id"], "random": {"n_trials": 6, "seed": 7, "space": space}}
    first, second = (client.post("/sweeps", json=body).json() for _ in range(2))
    params = [t["params"] for t in first["trials"]]
    assert params == [t["params"] for t in second["trials"]] and len(params) == 6
    for p in params:
        assert 1e-5 <= p["learning_rate"] <= 1e-1 and p["num_epochs"] in (1, 2, 3)
        assert 0.1 <= p["dropout_rate"] <= 0.6 and p["optimizer"] in ("sgd", "adam")
    assert first["random"] == {"n_trials": 6, "seed": 7, "space": space}
    adam = next(t for t in first["trials"] if t["params"]["optimizer"] == "adam")
    assert client.get(f"/jobs/{adam['job_id']}").json()["spec"]["momentum"] is None

    cancelled = client.post(f"/sweeps/{first['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert {t["status"] for t in cancelled.json()["trials"]} == {"cancelled"}
    assert client.post(f"/sweeps/{first['id']}/cancel").status_code == 409


def test_bad_sweeps_are_422_naming_the_field_and_create_nothing(client, tmp_path):
    dataset = ready_dataset(client, tmp_path)
    before = client.get("/jobs").json()["count"]
    cases = {
        "give either grid or random": {"base": {}},
        "grid gives 9 × 8 = 72 trials; a sweep runs at most 64": {
            "grid": {"learning_rate": [0.1 / (i + 1) for i in range(9)], "seed": list(range(8))}
        },
        "grid.colour is not a training option": {"grid": {"colour": ["red"]}},
        "base.dataset_id is not a training option": {"base": {"dataset_id": "x"}, "grid": {"seed": [1]}},
        "trial 2 (learning_rate=100): learning_rate: Input should be less than or equal to 10": {
            "grid": {"learning_rate": [0.1, 100]}
        },
        "trial 1 (warmup_epochs=5): warmup_epochs (5) must be less than num_epochs (2)": {
            "base": {"num_epochs": 2},
            "grid": {"warmup_epochs": [5]},
        },
        "log_uniform needs a positive lower bound": {
            "random": {"n_trials": 2, "space": {"learning_rate": {"log_uniform": [0, 1]}}}
        },
        "give one of {choice": {"random": {"n_trials": 2, "space": {"seed": {"normal": [0, 1]}}}},
        "less than or equal to 64": {"random": {"n_trials": 65, "space": {"seed": {"int": [0, 9]}}}},
        "weights": {"base": {"weights": "/etc"}, "grid": {"seed": [1]}},
    }
    for expected, extra in cases.items():
        response = client.post("/sweeps", json={"dataset_id": dataset["id"], **extra})
        assert response.status_code == 422, (expected, response.text)
        assert expected in response.json()["detail"], (expected, response.json())
    assert client.get("/jobs").json()["count"] == before and client.get("/sweeps").json()["count"] == 0
    missing = client.post("/sweeps", json={"dataset_id": "0" * 32, "grid": {"seed": [1]}})
    assert missing.status_code == 404, missing.text
    assert client.get("/sweeps").json()["count"] == 0
    assert client.get(f"/sweeps/{'0' * 32}").status_code == 404


def test_a_running_trial_blocks_deleting_its_sweep(client, tmp_path):
    dataset = ready_dataset(client, tmp_path)
    sweep = client.post("/sweeps", json={"dataset_id": dataset["id"], "grid": {"seed": [1, 2]}}).json()
    with session_scope() as session:
        session.get(JobRow, sweep["trials"][0]["job_id"]).status = "running"
    response = client.delete(f"/sweeps/{sweep['id']}")
    assert response.status_code == 409 and "cancel the sweep first" in response.json()["detail"]
    assert client.get(f"/sweeps/{sweep['id']}").json()["status"] == "running"


def test_the_best_trial_is_the_highest_accuracy_then_the_lowest_loss():
    def trial(id, status, acc, loss):
        return SimpleNamespace(id=id, status=status, best_val_accuracy=acc, best_val_loss=loss)

    trials = [
        trial("a", "succeeded", 0.9, 0.5),
        trial("b", "succeeded", 0.9, 0.3),
        trial("c", "failed", 1.0, 0.1),
    ]
    assert best_trial(trials).id == "b"
    assert best_trial([trial("d", "running", 0.99, 0.1)]) is None
