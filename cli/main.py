"""The `finetune` command: the engine's commands plus the service's (api, worker, migrate, up)."""

from __future__ import annotations

import os

import click

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

from model.cli import download_weights, predict, train


@click.group()
def main() -> None:
    """Finetune AlexNet on your own images, as a library, a command or a service."""


for command in (train, predict, download_weights):
    main.add_command(command)
