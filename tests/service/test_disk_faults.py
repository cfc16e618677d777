"""A full disk or a read-only data folder fails the job with a message that says so; nothing else breaks."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from core.config import get_settings
from core.storage import Storage
from testkit.service import ready_dataset
from worker.runner import run_job


@pytest.fixture()
def small_mount(tmp_path):
    """A real 40 MB filesystem (tmpfs) to fill up; needs root, as CI and the dev machines have."""
    target = tmp_path / f"mnt-{uuid.uuid4().hex[:6]}"
    target.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(target)]).returncode
    ):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield target
    subprocess.run(["umount", "-l", str(target)])


def job_on_other_data_dir(client, tmp_path, data_dir: Path) -> tuple[str, object]:
    dataset = ready_dataset(client, tmp_path)
    settings = get_settings().model_copy(update={"data_dir": data_dir})
    shutil.copytree(
        Storage(get_settings()).dataset_dir(dataset["id"]), Storage(settings).dataset_dir(dataset["id"])
    )
    job = client.post("/jobs", json={"dataset_id": dataset["id"], "num_epochs": 1, "batch_size": 4}).json()
    return job["id"], settings


def test_full_disk_fails_the_job_with_a_clear_message(client, tmp_path, small_mount):
    job_id, settings = job_on_other_data_dir(client, tmp_path, small_mount)
    assert run_job(job_id, settings) == "failed"
    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "failed" and "disk is full" in job["error"]
    assert client.get("/healthz").status_code == 200
    # on a disk with room (the service's own data folder) the resumed job finishes
    assert client.post(f"/jobs/{job_id}/resume").status_code == 202
    assert run_job(job_id, get_settings()) == "succeeded"


def test_read_only_data_folder_fails_the_job_with_a_clear_message(client, tmp_path, small_mount):
    job_id, settings = job_on_other_data_dir(client, tmp_path, small_mount)
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    assert run_job(job_id, settings) == "failed"
    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "failed" and "not writable" in job["error"]


def test_tensorflows_own_write_errors_say_what_the_disk_is_wrong_with(small_mount):
    """The export's SavedModel is written by TensorFlow, whose errors are not `OSError`s: a disk
    that filled up during the export was reported as an internal error."""
    import tensorflow as tf

    from worker.runner import describe_failure

    def save(name: str) -> str:
        with pytest.raises(tf.errors.OpError) as failure:  # 64 MB onto the 40 MB filesystem
            tf.raw_ops.SaveV2(
                prefix=str(small_mount / name),
                tensor_names=["x"],
                shape_and_slices=[""],
                tensors=[tf.zeros([1 << 24])],
            )
        return describe_failure(failure.value)

    assert save("full").startswith("the disk is full")
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    assert save("read-only").startswith("the data folder is not writable")
