"""Auth against the real API process, started as the README's `uvicorn api.main:app` (no start-up guard)."""

from __future__ import annotations

import httpx
import pytest
from click.testing import CliRunner

from cli.main import main as finetune_cli
from testkit.processes import ServiceProcess, free_port, wait_until_ready
from testkit.processes import service_env as process_env

pytestmark = pytest.mark.e2e
REMOTE = {"X-Forwarded-For": "203.0.113.7"}  # a caller beyond this machine, through a local proxy


@pytest.fixture()
def bare_uvicorn(service_env, clean_tables, tmp_path):
    port = free_port()
    api = ServiceProcess(
        ["api.main:app", "--port", str(port)],
        process_env(service_env),
        tmp_path / "api.log",
        module="uvicorn",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, [api])
        yield url
    finally:
        api.stop()


def test_a_service_that_had_tokens_never_opens_itself(bare_uvicorn):
    with httpx.Client(base_url=bare_uvicorn, timeout=10) as http:
        assert http.get("/jobs").status_code == 200  # no token ever: this machine is answered
        refused = http.get("/jobs", headers=REMOTE)
        assert refused.status_code == 401 and "no API tokens yet" in refused.json()["detail"]
        created = CliRunner().invoke(finetune_cli, ["token", "create", "alice"])
        token = {"Authorization": f"Bearer {created.output.strip()}"}
        assert http.get("/jobs").status_code == 401
        assert http.get("/jobs", headers={**token, **REMOTE}).status_code == 200
        assert CliRunner().invoke(finetune_cli, ["token", "revoke", "alice"]).exit_code == 0
        for headers in ({}, token, REMOTE, {**token, **REMOTE}):
            assert http.get("/jobs", headers=headers).status_code == 401, headers
        assert http.get("/healthz", headers=REMOTE).status_code == 200
