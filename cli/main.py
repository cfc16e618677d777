"""The `finetune` command: the engine's commands plus the service's (api, worker, migrate, up, token)."""

from __future__ import annotations

import os

import click

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

from cli.service import COMMANDS  # noqa: E402
from model.cli import download_weights, predict, train  # noqa: E402


@click.group()
def main() -> None:
    """Finetune AlexNet on your own images, as a library, a command or a service."""


for command in (train, predict, download_weights, *COMMANDS):
    main.add_command(command)

if __name__ == "__main__":
    main()
