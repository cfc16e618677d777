"""Preparation under a lease: one preparer per dataset, a bounded number of tries, and a delete
that stops a running preparation and leaves no files."""

from __future__ import annotations

import threading
import time

from core.config import get_settings
from core.datasets import prepare
from core.db import database_now, session_scope
from core.tables import DatasetRow
from testkit.service import upload_dataset, wait_for


def dataset_files(dataset_id: str) -> list:
    root = get_settings().data_dir
    return [p for p in (root / "datasets").glob(f"{dataset_id}*")] + list(
        (root / "uploads").glob(f"{dataset_id}*")
    )


def test_a_second_preparer_leaves_a_leased_dataset_alone(client, tmp_path):
    dataset = upload_dataset(client, tmp_path, per_class=4)
    with session_scope() as session:  # another prepare worker holds it
        row = session.get(DatasetRow, dataset["id"])
        row.lease_owner, row.lease_expires = "elsewhere:1:abc", database_now(session) + 60
    assert prepare(get_settings(), dataset["id"]) == "skipped"
    assert client.get(f"/datasets/{dataset['id']}").json()["status"] == "preparing"
    assert not (get_settings().data_dir / "datasets" / f"{dataset['id']}.partial").exists()
    with session_scope() as session:  # its lease runs out (the worker died): the next one takes over
        session.get(DatasetRow, dataset["id"]).lease_expires = database_now(session) - 1
    assert prepare(get_settings(), dataset["id"]) == "ready"


def test_a_preparation_that_kills_its_worker_every_time_gives_up(client, tmp_path):
    dataset = upload_dataset(client, tmp_path, per_class=4)
    with session_scope() as session:
        session.get(DatasetRow, dataset["id"]).attempts = 3
    assert prepare(get_settings(), dataset["id"]) == "failed"
    failed = client.get(f"/datasets/{dataset['id']}").json()
    assert failed["status"] == "failed" and failed["error"].startswith("gave up after 3 attempts")


def test_deleting_a_dataset_while_it_prepares_stops_it_and_leaves_no_files(client, tmp_path):
    dataset = upload_dataset(client, tmp_path, per_class=300, size=(640, 480))
    settings = get_settings().model_copy(update={"lease_seconds": 0.3})
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(result=prepare(settings, dataset["id"])))
    worker.start()
    partial = settings.data_dir / "datasets" / f"{dataset['id']}.partial"
    wait_for(partial.exists, timeout=60, interval=0.01)
    started = time.monotonic()
    assert client.delete(f"/datasets/{dataset['id']}").status_code == 204
    worker.join(timeout=60)
    assert outcome["result"] == "stopped" and time.monotonic() - started < 10
    assert dataset_files(dataset["id"]) == []
    assert client.get(f"/datasets/{dataset['id']}").status_code == 404
