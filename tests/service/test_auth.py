"""Tokens: once any exists, every endpoint but /healthz and /readyz needs one; owners see their own."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli.main import main as finetune_cli
from core.db import session_scope
from core.tables import ApiTokenRow
from tests.utils.images import make_image
from tests.utils.service import prepare_now


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
    from tests.utils.images import class_folder_zip

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
    for method, path in (
        ("get", f"/datasets/{dataset['id']}"),
        ("delete", f"/datasets/{dataset['id']}"),
        ("get", f"/jobs/{job['id']}"),
        ("get", f"/jobs/{job['id']}/metrics"),
        ("get", f"/jobs/{job['id']}/events"),
        ("post", f"/jobs/{job['id']}/cancel"),
        ("post", f"/jobs/{job['id']}/resume"),
        ("get", f"/jobs/{job['id']}/model"),
        ("get", f"/jobs/{job['id']}/tensorboard"),
    ):
        response = getattr(client, method)(path, headers=bob)
        assert response.status_code == 404, (method, path, response.text)
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
