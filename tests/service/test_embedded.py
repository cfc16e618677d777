"""The embedded default (SQLite and the folder broker in the data folder) at the service tier: the
same state model, deletes and auth as on PostgreSQL and Redis, over the real files."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import main as finetune_cli
from testkit.images import make_image
from testkit.service import LOOPBACK_CLIENT, prepare_now, upload_dataset
from tests.service.conftest import reset_caches

EMBEDDED_UNSET = ("FINETUNE_DATABASE_URL", "FINETUNE_BROKER_URL")


@pytest.fixture()
def embedded(tmp_path, weights_file_for_service, monkeypatch):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from core.config import get_settings
    from core.migrate import upgrade

    for name in EMBEDDED_UNSET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FINETUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINETUNE_WEIGHTS_PATH", str(weights_file_for_service))
    reset_caches()
    settings = get_settings()
    assert settings.database_url.startswith("sqlite") and settings.uses_filesystem_broker
    settings.data_dir.mkdir(parents=True)  # as `finetune up` makes it
    upgrade(settings.database_url)
    try:
        with TestClient(create_app(), client=LOOPBACK_CLIENT) as client:
            yield client, settings
    finally:
        reset_caches()


def test_a_job_runs_predicts_and_is_deleted_on_the_embedded_default(embedded, tmp_path):
    from core.storage import Storage
    from worker.runner import run_job

    client, settings = embedded
    dataset = upload_dataset(client, tmp_path)
    assert any((settings.broker_dir).rglob("*.msg")), "the upload's message is in the folder broker"
    assert prepare_now(dataset["id"]) == "ready"
    job = client.post("/jobs", json={"dataset_id": dataset["id"], "num_epochs": 1, "batch_size": 4}).json()
    assert run_job(job["id"], settings) == "succeeded"
    predicted = client.post(
        "/predict", files={"image": ("a.jpg", make_image(0, 1))}, data={"job_id": job["id"]}
    )
    assert predicted.status_code == 200, predicted.text
    assert client.post(f"/jobs/{job['id']}/resume").status_code == 409  # succeeded: one transition away
    run_dir = Storage(settings).run_dir(job["id"])
    assert run_dir.is_dir() and client.delete(f"/jobs/{job['id']}").status_code == 204
    assert not run_dir.exists() and client.get(f"/jobs/{job['id']}").status_code == 404
    assert client.delete(f"/datasets/{dataset['id']}").status_code == 204
    assert not Storage(settings).dataset_dir(dataset["id"]).exists()


def test_cancel_and_resume_and_auth_on_the_embedded_default(embedded, tmp_path):
    client, _ = embedded
    dataset = upload_dataset(client, tmp_path)
    prepare_now(dataset["id"])
    job = client.post("/jobs", json={"dataset_id": dataset["id"], "num_epochs": 1}).json()
    assert client.delete(f"/datasets/{dataset['id']}").status_code == 409  # a queued job uses it
    assert client.post(f"/jobs/{job['id']}/cancel").json()["status"] == "cancelled"
    assert client.post(f"/jobs/{job['id']}/resume").json()["status"] == "queued"
    created = CliRunner().invoke(finetune_cli, ["token", "create", "carol"])
    assert created.exit_code == 0, created.output
    assert client.get("/jobs").status_code == 401
    assert CliRunner().invoke(finetune_cli, ["token", "revoke", "carol"]).exit_code == 0
    assert client.get("/jobs").status_code == 401  # revoking the last token keeps auth on
