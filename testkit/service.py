"""Helpers that drive the service through its public API, as a user would."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from testkit.images import class_folder_zip

# A test client's address: this machine, as a local user's (the default "testclient" is no address,
# and the auth policy answers only loopback callers without a token until a token exists).
LOOPBACK_CLIENT = ("127.0.0.1", 50000)


def upload_dataset(
    client, tmp_path: Path, per_class: int = 8, size=(64, 48), headers: dict | None = None, **form
) -> dict:
    archive = class_folder_zip(tmp_path / f"pets-{time.monotonic_ns()}.zip", per_class=per_class, size=size)
    with open(archive, "rb") as fh:
        response = client.post(
            "/datasets",
            files={"file": ("pets.zip", fh, "application/zip")},
            data={"val_fraction": "0.25", "test_fraction": "0.125", **form},
            headers=headers,
        )
    assert response.status_code == 201, response.text
    return response.json()


def prepare_now(dataset_id: str) -> str:
    """Run the preparation step as the worker would (the plain function behind the task)."""
    from core.config import get_settings
    from core.datasets import prepare

    return prepare(get_settings(), dataset_id)


def ready_dataset(client, tmp_path: Path, per_class: int = 8) -> dict:
    dataset = upload_dataset(client, tmp_path, per_class)
    prepare_now(dataset["id"])
    response = client.get(f"/datasets/{dataset['id']}")
    assert response.json()["status"] == "ready", response.text
    return response.json()


def downloaded_model(client, job_id: str, fmt: str = "savedmodel"):
    """`GET /jobs/{id}/model` as a client sees it with no worker running: 202 (a worker is asked
    to build it), the build as the prepare worker runs it, then the ZIP."""
    from core.config import get_settings
    from core.model_files import build_model_archive

    asked = client.get(f"/jobs/{job_id}/model", params={"format": fmt})
    assert asked.status_code == 202 and asked.headers["retry-after"], asked.text
    assert build_model_archive(get_settings(), job_id, fmt) == "ready"
    response = client.get(f"/jobs/{job_id}/model", params={"format": fmt})
    assert response.status_code == 200, response.text
    return response


def wait_for(predicate, timeout: float = 120.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout} s")


def read_sse(response, with_ids: bool = False) -> list[tuple]:
    """(event, data) per event, or (event, data, id) with `with_ids`."""
    from client.events import parse_events

    events = parse_events(response.iter_lines())
    return [event if with_ids else event[:2] for event in events]


def upload_and_wait(
    http: httpx.Client, tmp_path, per_class: int = 10, archive=None, fractions=(0.2, 0.2)
) -> dict:
    """Upload a ZIP (generated cats and dogs unless `archive` is given) and wait until it is ready."""
    archive = archive or class_folder_zip(tmp_path / f"pets-{time.monotonic_ns()}.zip", per_class=per_class)
    with open(archive, "rb") as fh:
        created = http.post(
            "/datasets",
            files={"file": ("pets.zip", fh)},
            data={"val_fraction": str(fractions[0]), "test_fraction": str(fractions[1])},
        )
    assert created.status_code == 201, created.text
    return wait_for(
        lambda: (d := http.get(f"/datasets/{created.json()['id']}").json())["status"] == "ready" and d,
        timeout=120,
    )


def follow_to_the_end(http: httpx.Client, job_id: str) -> list[tuple[str, dict]]:
    with http.stream("GET", f"/jobs/{job_id}/events", timeout=httpx.Timeout(300, connect=10)) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/event-stream"
        )
        return read_sse(response)


def wait_until_finished(http: httpx.Client, job_id: str, timeout: float = 240.0) -> dict:
    """Poll the job until it has succeeded, failed or been cancelled; return it."""

    def finished():
        job = http.get(f"/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(finished, timeout=timeout)
