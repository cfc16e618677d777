"""Tokens: once any exists, every endpoint but /healthz and /readyz needs one; owners see their own."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli.main import main as finetune_cli
from core.db import session_scope
from core.tables import ApiTokenRow
from testkit.images import make_image
from testkit.service import LOOPBACK_CLIENT, prepare_now, upload_dataset


@pytest.fixture()
def tokens(client):
    runner = CliRunner()
    alice = runner.invoke(finetune_cli, ["token", "create", "alice"])
    bob = runner.invoke(finetune_cli, ["token", "create", "bob"])
    assert alice.exit_code == 0 and bob.exit_code == 0, alice.output + bob.output
    return {
        "alice": {"Authorization": f"Bearer {alice.output.strip()}"},
        "bob": {"Authorization": f"Bearer {bob.output.strip()}"},
    }


def assert_answers(client, headers: dict, status: int, requests) -> None:
    """Each (method, path) answers `status` to the caller with `headers`."""
    for method, path in requests:
        response = getattr(client, method)(path, headers=headers)
        assert response.status_code == status, (method, path, response.text)


def test_tokens_are_stored_hashed(tokens):
    with session_scope() as session:
        stored = session.scalars(select(ApiTokenRow.token_hash)).all()
    plain = [h["Authorization"].split()[1] for h in tokens.values()]
    assert len(stored) == 2 and not set(stored) & set(plain) and all(len(h) == 64 for h in stored)


def test_missing_or_wrong_token_is_401_but_health_stays_open(client, tokens):
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
    ):
        response = client.get("/jobs", headers=headers)
        assert response.status_code == 401 and response.json()["error"] == "Unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    assert client.get("/jobs", headers=tokens["alice"]).status_code == 200


def test_another_owners_things_do_not_exist(client, tokens, tmp_path):
    from testkit.images import class_folder_zip

    with open(class_folder_zip(tmp_path / "d.zip", per_class=8), "rb") as fh:
        dataset = client.post(
            "/datasets",
            files={"file": ("d.zip", fh)},
            headers=tokens["alice"],
            data={"val_fraction": "0.25", "test_fraction": "0"},
        ).json()
    prepare_now(dataset["id"])
    job = client.post("/jobs", json={"dataset_id": dataset["id"]}, headers=tokens["alice"]).json()
    bob = tokens["bob"]
    assert_answers(
        client,
        bob,
        404,
        (
            ("get", f"/datasets/{dataset['id']}"),
            ("delete", f"/datasets/{dataset['id']}"),
            ("get", f"/jobs/{job['id']}"),
            ("get", f"/jobs/{job['id']}/metrics"),
            ("get", f"/jobs/{job['id']}/events"),
            ("post", f"/jobs/{job['id']}/cancel"),
            ("post", f"/jobs/{job['id']}/resume"),
            ("get", f"/jobs/{job['id']}/model"),
            ("get", f"/jobs/{job['id']}/tensorboard"),
        ),
    )
    assert client.post("/jobs", json={"dataset_id": dataset["id"]}, headers=bob).status_code == 404
    predict = client.post(
        "/predict", files={"image": ("a.jpg", make_image(0, 1))}, data={"job_id": job["id"]}, headers=bob
    )
    assert predict.status_code == 404
    assert (
        client.get("/jobs", headers=bob).json()["count"] == 0
        and client.get("/datasets", headers=bob).json()["count"] == 0
    )
    assert client.get("/jobs", headers=tokens["alice"]).json()["count"] == 1
    assert client.get(f"/jobs/{job['id']}", headers=tokens["alice"]).status_code == 200


def test_static_tokens_from_the_settings(client, monkeypatch):
    from core.config import get_settings

    monkeypatch.setattr(get_settings(), "api_tokens", ["s3cret-token"])
    assert client.get("/jobs").status_code == 401
    assert client.get("/jobs", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200


@pytest.mark.parametrize("command", ["api", "up"])
def test_listening_on_an_open_address_needs_a_token(client, command):
    result = CliRunner().invoke(finetune_cli, [command, "--host", "0.0.0.0"])
    assert result.exit_code == 1 and "refusing to listen on 0.0.0.0" in result.output


def test_revoking_a_token(client, tokens):
    assert CliRunner().invoke(finetune_cli, ["token", "revoke", "bob"]).exit_code == 0
    assert client.get("/jobs", headers=tokens["bob"]).status_code == 401
    assert CliRunner().invoke(finetune_cli, ["token", "revoke", "bob"]).exit_code == 1
    again = CliRunner().invoke(finetune_cli, ["token", "create", "bob"])  # a revoked name gets a new one
    assert again.exit_code == 0
    assert client.get("/jobs", headers={"Authorization": f"Bearer {again.output.strip()}"}).status_code == 200
    assert client.get("/jobs", headers=tokens["bob"]).status_code == 401  # the old one stays revoked
    listed = CliRunner().invoke(finetune_cli, ["token", "list"]).output
    assert "alice" in listed and "bob" in listed and "ft_" not in listed


def test_revoking_the_last_token_never_opens_the_service(client, tokens):
    for name in ("alice", "bob"):
        assert CliRunner().invoke(finetune_cli, ["token", "revoke", name]).exit_code == 0
    from fastapi.testclient import TestClient

    from api.main import create_app

    for api in (client, TestClient(create_app(), client=LOOPBACK_CLIENT)):  # this process, and a new one
        response = api.get("/jobs")
        assert response.status_code == 401, response.text


def caller(address: str):
    from fastapi.testclient import TestClient

    from api.main import create_app

    return TestClient(create_app(), client=(address, 50000))


def test_without_tokens_only_this_machine_is_answered(clean_tables):
    assert caller("127.0.0.1").get("/jobs").status_code == 200
    remote = caller("203.0.113.7").get("/jobs")
    assert remote.status_code == 401 and "no API tokens yet" in remote.json()["detail"]
    assert caller("203.0.113.7").get("/healthz").status_code == 200  # health stays open


@pytest.mark.parametrize(
    "mode, local, remote", [("off", 200, 401), ("required", 401, 401), ("auto", 200, 401)]
)
def test_auth_modes(clean_tables, monkeypatch, mode, local, remote):
    from core.config import get_settings

    monkeypatch.setattr(get_settings(), "auth", mode)
    assert caller("127.0.0.1").get("/jobs").status_code == local
    assert caller("::1").get("/jobs").status_code == local
    assert caller("203.0.113.7").get("/jobs").status_code == remote
    assert caller("127.0.0.1").get("/openapi.json").status_code == 200  # schema and pages hold no data


def test_auth_off_is_refused_beyond_loopback(clean_tables, monkeypatch):
    from pydantic import ValidationError

    from core.config import Settings

    with pytest.raises(ValidationError, match="FINETUNE_AUTH=off answers this machine only"):
        Settings(auth="off", host="0.0.0.0")
    monkeypatch.setenv("FINETUNE_AUTH", "off")
    from core.config import get_settings

    get_settings.cache_clear()
    try:
        for command in ("api", "up"):
            result = CliRunner().invoke(finetune_cli, [command, "--host", "0.0.0.0"])
            assert result.exit_code == 1 and "FINETUNE_AUTH=off" in result.output, result.output
    finally:
        get_settings.cache_clear()


def test_metrics_show_a_user_only_their_own_jobs(client, tokens, tmp_path, monkeypatch):
    from core.config import get_settings
    from tests.service.test_metrics import samples, value

    for name in ("alice", "bob"):
        dataset = upload_dataset(client, tmp_path, headers=tokens[name])
        prepare_now(dataset["id"])
        job = client.post("/jobs", json={"dataset_id": dataset["id"]}, headers=tokens[name])
        assert job.status_code == 202, job.text
    monkeypatch.setattr(get_settings(), "api_tokens", ["operator-token"])
    seen = {
        name: samples(client, headers=headers)
        for name, headers in {**tokens, "operator": {"Authorization": "Bearer operator-token"}}.items()
    }
    assert value(seen["alice"], "finetune_jobs", status="queued") == 1
    assert value(seen["bob"], "finetune_jobs", status="queued") == 1
    assert value(seen["operator"], "finetune_jobs", status="queued") == 2


def test_the_rest_of_another_owners_things_do_not_exist_either(client, tokens, tmp_path):
    """Images, predictions, deleting a job, every sweep route, and continuing from another owner's job."""
    from core.config import get_settings
    from worker.runner import run_job

    alice, bob = tokens["alice"], tokens["bob"]
    dataset = upload_dataset(client, tmp_path, headers=alice)
    prepare_now(dataset["id"])
    job = client.post("/jobs", json={"dataset_id": dataset["id"], "num_epochs": 1}, headers=alice).json()
    assert run_job(job["id"], get_settings()) == "succeeded"
    sweep = client.post(
        "/sweeps", json={"dataset_id": dataset["id"], "grid": {"seed": [1, 2]}}, headers=alice
    ).json()
    assert_answers(
        client,
        bob,
        404,
        (
            ("get", f"/datasets/{dataset['id']}/images"),
            ("get", f"/datasets/{dataset['id']}/images/0"),
            ("get", f"/jobs/{job['id']}/predictions"),
            ("delete", f"/jobs/{job['id']}"),
            ("get", f"/sweeps/{sweep['id']}"),
            ("post", f"/sweeps/{sweep['id']}/cancel"),
            ("delete", f"/sweeps/{sweep['id']}"),
        ),
    )
    assert client.get("/sweeps", headers=bob).json()["count"] == 0
    theirs = client.post("/sweeps", json={"dataset_id": dataset["id"], "grid": {"seed": [1]}}, headers=bob)
    assert theirs.status_code == 404, theirs.text
    bobs = upload_dataset(client, tmp_path, headers=bob)
    prepare_now(bobs["id"])
    continued = client.post(
        "/jobs", json={"dataset_id": bobs["id"], "weights": f"job:{job['id']}"}, headers=bob
    )
    assert continued.status_code == 404 and "no job" in continued.json()["detail"], continued.text
    assert_answers(  # all still there for their owner
        client,
        alice,
        200,
        (
            ("get", f"/datasets/{dataset['id']}/images/0"),
            ("get", f"/jobs/{job['id']}/predictions"),
            ("get", f"/sweeps/{sweep['id']}"),
        ),
    )
