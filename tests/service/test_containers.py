"""No Docker engine runs here, so the container files are checked for what can break them silently."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from cli.main import main as finetune_cli
from core.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_services():
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "api", "worker", "flower"} <= set(services)
    assert services["api"]["ports"] == ["8000:8000"]
    gpu = services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    for name in ("postgres", "redis", "api", "worker", "prepare"):
        assert "healthcheck" in services[name], name
    for name in ("worker", "prepare"):  # a solo-pool worker cannot answer `inspect ping` mid-job
        assert services[name]["healthcheck"]["test"][1:3] == ["finetune", "worker-alive"], name
    assert services["flower"]["ports"] == ["127.0.0.1:5555:5555"]  # no login: this host only
    volumes = {v.split(":")[0] for name in ("api", "worker", "migrate") for v in services[name]["volumes"]}
    assert volumes == {"finetune-data"}


def test_every_command_points_at_a_real_entry_point():
    for name, service in compose()["services"].items():
        command = service.get("command")
        if not command or "image" in service and "build" not in service:
            continue
        if command[0] == "finetune":
            assert command[1] in finetune_cli.commands, f"{name}: no `finetune {command[1]}`"
            subcommand = finetune_cli.commands[command[1]]
            options = {opt for param in subcommand.params for opt in getattr(param, "opts", [])}
            for word in command[2:]:
                if word.startswith("--"):
                    assert word.split("=")[0] in options, (
                        f"{name}: `finetune {command[1]}` has no option {word}"
                    )
        elif command[0] == "celery":
            module = importlib.import_module(command[command.index("-A") + 1])
            assert hasattr(module, "app"), name
        else:
            raise AssertionError(f"{name}: unexpected command {command}")


def test_every_finetune_variable_is_a_setting():
    fields = {f"FINETUNE_{name.upper()}" for name in Settings.model_fields}
    for name, service in compose()["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith("FINETUNE_"):
                assert variable in fields, f"{name}: {variable} is not a setting"


def test_gpu_image_matches_the_pinned_tensorflow():
    pinned = next(
        d
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        if d.startswith("tensorflow>=")
    )
    minor = re.search(r">=(\d+\.\d+)", pinned).group(1)
    base = re.search(r"^FROM tensorflow/tensorflow:(\S+)-gpu$", (ROOT / "Dockerfile.gpu").read_text(), re.M)
    assert base and base.group(1).startswith(minor + "."), base


def test_the_image_install_gives_a_working_client(tmp_path):
    """What the image copies, installed as its `pip install .` does: the SDK and `finetune client`
    run from there (outside this checkout), and the install asks for what the client imports."""
    context = tmp_path / "context"
    context.mkdir()
    for sources in re.findall(r"^COPY (.+) \./\S*$", (ROOT / "Dockerfile.gpu").read_text(), re.M):
        for source in sources.split():
            copy = shutil.copytree if (ROOT / source).is_dir() else shutil.copy
            copy(ROOT / source, context / source)
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*install, "--target", str(site), str(context)], check=True, capture_output=True)
    metadata = next(site.glob("finetune-*.dist-info")) / "METADATA"
    required = {
        re.split(r"[<>=!~ ;\[]", line.split(": ", 1)[1])[0].lower()
        for line in metadata.read_text().splitlines()
        if line.startswith("Requires-Dist: ") and "extra ==" not in line
    }
    assert "httpx" in required, required
    run_here = dict(cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True)
    sdk = subprocess.run(
        [
            sys.executable,
            "-c",
            "import client, client.http; print(client.FinetuneClient.__name__, client.__file__)",
        ],
        **run_here,
    )
    assert sdk.returncode == 0 and sdk.stdout.startswith("FinetuneClient " + str(site)), sdk.stderr
    command = subprocess.run([sys.executable, "-m", "cli.main", "client", "--help"], **run_here)
    assert command.returncode == 0 and "list" in command.stdout, command.stderr


def test_the_settings_defaults_are_the_engines():
    """`core.config` repeats two of the engine's defaults so that reading settings imports no engine."""
    from model.data.preprocess import MAX_IMAGE_PIXELS
    from model.exports.weights import WEIGHTS_FILE_NAME

    settings = Settings(data_dir=ROOT / "data")
    assert settings.max_image_pixels == MAX_IMAGE_PIXELS
    assert settings.weights_path.name == WEIGHTS_FILE_NAME
