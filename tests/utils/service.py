"""Helpers that drive the service through its public API, as a user would."""

from __future__ import annotations

import time
from pathlib import Path

from tests.utils.images import class_folder_zip


def upload_dataset(client, tmp_path: Path, per_class: int = 8, **form) -> dict:
    archive = class_folder_zip(tmp_path / f"pets-{time.monotonic_ns()}.zip", per_class=per_class)
    with open(archive, "rb") as fh:
        response = client.post("/datasets", files={"file": ("pets.zip", fh, "application/zip")},
                               data={"val_fraction": "0.25", "test_fraction": "0.125", **form})
    assert response.status_code == 201, response.text
    return response.json()


def prepare_now(dataset_id: str) -> None:
    """Run the preparation step as the worker would (the plain function behind the task)."""
    from core.config import get_settings
    from core.datasets import prepare
    from core.db import session_scope

    with session_scope() as session:
        prepare(session, get_settings(), dataset_id)


def ready_dataset(client, tmp_path: Path, per_class: int = 8) -> dict:
    dataset = upload_dataset(client, tmp_path, per_class)
    prepare_now(dataset["id"])
    response = client.get(f"/datasets/{dataset['id']}")
    assert response.json()["status"] == "ready", response.text
    return response.json()


def wait_for(predicate, timeout: float = 120.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout} s")
