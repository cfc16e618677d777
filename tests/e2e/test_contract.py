"""The OpenAPI document is the contract: Schemathesis, every check it has and all four phases
(examples, coverage, fuzzing, stateful), against the real API process on PostgreSQL, with a user's token."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli.main import main as finetune_cli
from testkit.images import class_folder_zip
from testkit.processes import ServiceProcess, free_port, wait_until_ready
from testkit.processes import service_env as process_env

pytestmark = pytest.mark.e2e

# Rules JSON Schema cannot state (an upload must be a ZIP of images; warmup_epochs < num_epochs;
# a range's low < high): these operations may answer 422 to data the schema allows. Their
# descriptions say so; every other check holds for them too.
CONFIG = """
[[operations]]
include-path-regex = "^/(datasets|jobs|sweeps)$"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429", "503"]
"""


def things_to_find(url: str, token: str, tmp_path) -> str:
    """A ready dataset, a succeeded job and a sweep, named to the run: the routes that read them
    answer more than 404 (the generated ids mostly miss)."""
    import httpx

    from core.config import get_settings
    from testkit.service import prepare_now
    from worker.runner import run_job

    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    with open(class_folder_zip(tmp_path / "d.zip", per_class=6), "rb") as fh:
        dataset = http.post("/datasets", files={"file": ("d.zip", fh)}, data={"val_fraction": "0.34"}).json()
    prepare_now(dataset["id"])
    job = http.post("/jobs", json={"dataset_id": dataset["id"], "num_epochs": 1, "batch_size": 4}).json()
    assert run_job(job["id"], get_settings()) == "succeeded"
    sweep = http.post("/sweeps", json={"dataset_id": dataset["id"], "grid": {"seed": [1]}}).json()
    return (
        f'\n[parameters]\n"path.dataset_id" = "{dataset["id"]}"\n"path.job_id" = "{job["id"]}"\n'
        f'"path.sweep_id" = "{sweep["id"]}"\n'
    )


def test_every_check_in_every_phase_holds_against_the_real_api(service_env, clean_tables, tmp_path):
    port = free_port()
    api = ServiceProcess(
        ["api.main:app", "--port", str(port)], process_env(service_env), tmp_path / "api.log", "uvicorn"
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, [api])
        token = CliRunner().invoke(finetune_cli, ["token", "create", "contract"]).output.strip()
        (tmp_path / "schemathesis.toml").write_text(CONFIG + things_to_find(url, token, tmp_path))
        run = subprocess.run(
            [
                *(
                    sys.executable,
                    "-m",
                    "schemathesis.cli",
                    "--config-file",
                    str(tmp_path / "schemathesis.toml"),
                ),
                *("run", f"{url}/openapi.json", "--checks", "all"),
                *("--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "10", "--seed", "1"),
                *("-H", f"Authorization: Bearer {token}", "--generation-deterministic"),
            ],
            cwd=tmp_path,  # Schemathesis keeps its cache where it runs: not in the checkout
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        api.stop()
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    summary = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert summary and summary.group(1) == summary.group(2), run.stdout[-3000:]
