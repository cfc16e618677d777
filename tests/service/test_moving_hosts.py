"""A run belongs to the data folder, not to the host that started it: a worker that sees the same
volume at another path (a second machine's NFS or CSI mount; here a bind mount) resumes it."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

import pytest

from core.config import get_settings
from core.db import session_scope
from core.storage import Storage
from core.tables import JobRow, TrainMetricRow
from testkit.service import ready_dataset, wait_for
from tests.service.test_worker import count
from tests.utils.mounts import mounted_elsewhere
from worker.runner import _active, run_job


@pytest.fixture()
def two_hosts(client, tmp_path, weights_file_for_service):
    """Host A sees the data folder where the service put it; host B sees the same files bind-mounted
    at another path. Both find the pretrained weights inside the data folder."""
    data_dir = get_settings().data_dir
    shutil.copy(weights_file_for_service, data_dir / "bvlc_alexnet.npz")
    with mounted_elsewhere(data_dir, tmp_path / "host-b" / "data") as mount:
        try:
            yield {
                name: get_settings().model_copy(
                    update={"data_dir": root, "weights_path": root / "bvlc_alexnet.npz"}
                )
                for name, root in (("a", data_dir), ("b", mount))
            }
        finally:
            (data_dir / "bvlc_alexnet.npz").unlink(missing_ok=True)


def stopped_after_two_steps(job_id: str, settings) -> str:
    """Run the job as host A's worker would, and stop it (as SIGTERM does) once it has trained."""
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("first", run_job(job_id, settings)))
    thread.start()
    wait_for(lambda: count(TrainMetricRow, job_id) >= 2 and job_id in _active, timeout=120)
    _active[job_id].request_stop()
    thread.join(timeout=60)
    return outcome["first"]


def host_paths_in(folder: Path, *roots: Path) -> list[str]:
    """Files under `folder` whose text names any of `roots`."""
    named = []
    for path in folder.rglob("*.json"):
        text = path.read_text(errors="replace")
        named += [f"{path.name}: {root}" for root in roots if str(root) in text]
    return named


@pytest.mark.parametrize("weights", ["imagenet", "job"])
def test_a_job_started_on_one_host_resumes_on_another_mount_path(
    client, tmp_path, two_hosts, weights, caplog
):
    dataset = ready_dataset(client, tmp_path)
    body = {"dataset_id": dataset["id"], "batch_size": 4, "num_epochs": 40}
    if weights == "job":
        first = client.post("/jobs", json={**body, "num_epochs": 1}).json()["id"]
        assert run_job(first, two_hosts["a"]) == "succeeded"
        body["weights"] = f"job:{first}"
    job_id = client.post("/jobs", json=body).json()["id"]
    assert stopped_after_two_steps(job_id, two_hosts["a"]) == "released"
    roots = [two_hosts[name].data_dir for name in ("a", "b")]
    run_dir = Storage(two_hosts["a"]).run_dir(job_id)
    assert (run_dir / "checkpoint" / "state.json").is_file()
    assert host_paths_in(run_dir, *roots) == []  # the checkpoint names its weights, not a path
    with caplog.at_level(logging.INFO, logger="worker.recorder"):
        assert run_job(job_id, two_hosts["b"]) == "succeeded"
    assert "resumed from its checkpoint after step" in caplog.text
    with session_scope() as session:
        row = session.get(JobRow, job_id)
        assert row.attempts == 1 and row.error is None
        assert not any(str(root) in str(row.spec) + str(row.progress) for root in roots)
    assert host_paths_in(run_dir, *roots) == []  # the export's train_spec.json included
    spec = (Storage(two_hosts["b"]).export_dir(job_id) / "train_spec.json").read_text()
    assert f'"weights": "{body.get("weights", "imagenet")}"' in spec
