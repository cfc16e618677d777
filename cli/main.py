"""The `finetune` command: the engine's commands plus the service's (api, worker, migrate, up, token)."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import click

# TensorFlow's C++ start-up chatter (oneDNN notes, CUDA probing errors on a CPU machine) stays out
# of normal output (here and in `cli.quiet`); `finetune --verbose` shows it. A value set wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from model.network.cpu_kernels import choose_cpu_settings  # noqa: E402

choose_cpu_settings()  # before anything imports TensorFlow

from cli import client_models, client_sweeps  # noqa: E402, F401  (add their commands to `client`)
from cli.client import client  # noqa: E402
from cli.engine import download_weights, export, predict, train  # noqa: E402
from cli.quiet import filter_native_stderr  # noqa: E402
from cli.service import COMMANDS  # noqa: E402


def read_env_file() -> None:
    """Every command reads `.env` as the service's settings do, the environment winning: the
    engine's commands (`train`, `download-weights`) take their defaults from the environment."""
    from dotenv import dotenv_values

    for key, value in dotenv_values(".env").items():
        if key.upper().startswith("FINETUNE_") and value is not None:
            os.environ.setdefault(key.upper(), value)


@click.group()
@click.option("--verbose", "-v", is_flag=True, help="Show TensorFlow's own log lines and warnings.")
def main(verbose: bool) -> None:
    """Finetune AlexNet on your own images, as a library, a command or a service."""
    read_env_file()
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    for name in ("tensorflow", "absl", "keras"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for module in ("tensorflow", "keras", "absl", "google.protobuf"):
        warnings.filterwarnings("ignore", module=module)


for command in (train, predict, export, download_weights, *COMMANDS, client):
    main.add_command(command)


def run() -> None:
    """The console entry point: TensorFlow's native log lines are filtered unless --verbose."""
    if not {"--verbose", "-v"} & set(sys.argv[1:2]):
        filter_native_stderr()
    main()


if __name__ == "__main__":
    run()
