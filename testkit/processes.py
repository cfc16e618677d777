"""Start the real service processes (API, workers) for end-to-end tests, and stop them."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """One `finetune ...` process (or `python -m <module> ...`) with its log in a file (read it when
    a test fails)."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, module: str = "cli.main"):
        self.args, self.log_path = args, log_path
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int | None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
        return self.process.returncode

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")


def run_python(program: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`python -c program args...` in a fresh process at the repository root with `env` as its whole
    environment: for what TensorFlow reads once, when it is imported."""
    return subprocess.run(
        [sys.executable, "-c", program, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def service_env(extra: dict[str, str]) -> dict[str, str]:
    # TF_XLA_FLAGS: an app built in the test process names its own compile cache there
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINETUNE_") and k != "TF_XLA_FLAGS"}
    env.update(extra)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_until_ready(base_url: str, processes: list[ServiceProcess], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.process.poll() is not None:
                raise RuntimeError(f"{process.args} exited early:\n{process.output()[-4000:]}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{base_url} not ready within {timeout} s")


def wait_for_log(process: ServiceProcess, text: str | re.Pattern, timeout: float = 90.0):
    """Until the log holds `text` (a string, or a pattern searched for: its match is returned)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = process.output()
        found = text.search(output) if isinstance(text, re.Pattern) else text in output
        if found:
            return found
        if process.process.poll() is not None:
            raise RuntimeError(f"{process.args} exited:\n{process.output()[-4000:]}")
        time.sleep(0.3)
    raise TimeoutError(
        f"{process.args}: no {text!r} in the log within {timeout} s:\n{process.output()[-3000:]}"
    )


def start_embedded(data_dir: Path, log_path: Path, **settings) -> tuple[ServiceProcess, str]:
    """`finetune up` on the embedded default (SQLite, folder broker) in `data_dir`, once it is ready."""
    port = free_port()
    up = ServiceProcess(
        ["up", "--port", str(port)],
        service_env(
            {
                "FINETUNE_DATA_DIR": str(data_dir),
                **{f"FINETUNE_{k.upper()}": str(v) for k, v in settings.items()},
            }
        ),
        log_path,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, [up], timeout=120)
    except BaseException:
        up.stop()
        raise
    return up, base_url
