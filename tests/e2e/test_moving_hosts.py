"""A job handed back by a worker process on one host is resumed by a worker process that sees the
data folder at another path (a bind mount), from its checkpoint."""

from __future__ import annotations

import re
import shutil
import signal

import httpx
import pytest

from testkit.processes import ServiceProcess, wait_for_log
from testkit.service import upload_and_wait, wait_for
from tests.utils.mounts import mounted_elsewhere

pytestmark = pytest.mark.e2e


def test_a_worker_on_another_mount_path_resumes_a_job_from_its_checkpoint(
    start_service, service_env, tmp_path
):
    data_dir = tmp_path / "data-a"  # this test's own data folder, with the weights inside it
    data_dir.mkdir()
    shutil.copy(service_env["FINETUNE_WEIGHTS_PATH"], data_dir / "bvlc_alexnet.npz")
    service = start_service(data_dir=data_dir, weights_path=data_dir / "bvlc_alexnet.npz")
    http = httpx.Client(base_url=service.url, timeout=60)
    dataset = upload_and_wait(http, tmp_path, per_class=10)
    job_id = http.post(
        "/jobs", json={"dataset_id": dataset["id"], "num_epochs": 400, "batch_size": 4}
    ).json()["id"]
    wait_for(lambda: (http.get(f"/jobs/{job_id}").json()["progress"].get("step") or 0) >= 3, timeout=180)
    service.processes[-1].stop(signal.SIGTERM, timeout=90)  # host A's train worker goes (a deploy)
    given_back = http.get(f"/jobs/{job_id}").json()
    assert given_back["status"] == "queued", given_back
    with mounted_elsewhere(data_dir, tmp_path / "host-b" / "data") as mount:
        env = {
            **service.env,
            "FINETUNE_DATA_DIR": str(mount),
            "FINETUNE_WEIGHTS_PATH": str(mount / "bvlc_alexnet.npz"),
        }
        worker = ServiceProcess(["worker", "--queue", "train"], env, tmp_path / "worker-b.log")
        try:
            resumed = wait_for_log(
                worker, re.compile(r"resumed from its checkpoint after step (\d+)"), timeout=180
            )
            assert int(resumed.group(1)) >= given_back["progress"]["step"] - 1
            wait_for(lambda: http.get(f"/jobs/{job_id}").json()["status"] == "running", timeout=60)
            assert http.post(f"/jobs/{job_id}/cancel").status_code == 200
            ended = wait_for(
                lambda: (j := http.get(f"/jobs/{job_id}").json())["status"] == "cancelled" and j, 60
            )
        finally:
            worker.stop()
    assert ended["error"] is None and ended["attempts"] == 1, ended
    assert "holds a run with other options" not in worker.output()
