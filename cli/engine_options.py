"""The training options as command-line flags, shared by `finetune train` and `finetune client
submit`, so a local run and a job on the service are described the same way."""

from __future__ import annotations

import click

from model.network.layout import WEIGHT_LAYERS

SPEC_OPTIONS = [
    click.option("--train-layers", default=None, help="Comma-separated. [default: fc7,fc8; all with random]"),
    click.option("--reinit-layers", default=None, help="Layers that start fresh. [default: fc8]"),
    click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam"]), default="sgd",
                 show_default=True),
    click.option("--learning-rate", type=float, default=0.001, show_default=True),
    click.option("--lr-schedule", type=click.Choice(["constant", "step", "cosine"]), default="constant",
                 show_default=True, help="step: ×0.1 at 50% and 75%; cosine: down towards 0."),
    click.option("--warmup-epochs", type=int, default=0, show_default=True,
                 help="Epochs of linear warm-up to the learning rate."),
    click.option("--weight-decay", type=float, default=0.0, show_default=True,
                 help="Decoupled, on kernels (not biases)."),
    click.option("--label-smoothing", type=float, default=0.0, show_default=True),
    click.option("--class-weight", type=click.Choice(["none", "balanced"]), default="none",
                 show_default=True, help="balanced: weigh images by the inverse of their class's size."),
    click.option("--momentum", type=float, default=None, help="SGD momentum. [default: 0.9 with sgd]"),
    click.option("--epochs", "num_epochs", type=int, default=10, show_default=True),
    click.option("--batch-size", type=int, default=128, show_default=True),
    click.option("--dropout", "dropout_rate", type=float, default=0.5, show_default=True,
                 help="Probability of dropping."),
    click.option("--flip/--no-flip", "augment_flip", default=True, show_default=True),
    click.option("--patience", "early_stopping_patience", type=int, default=None,
                 help="Stop after N epochs without a better validation accuracy."),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--precision", type=click.Choice(["auto", "float32", "bfloat16", "float16"]), default="auto",
                 show_default=True, help="auto: bfloat16 where the hardware runs it natively, else float32."),
    click.option("--mixed-precision", is_flag=True, hidden=True),
    click.option("--xla", is_flag=True),
    click.option("--feature-cache/--no-feature-cache", default=True, show_default=True),
]  # fmt: skip


def spec_options(command):
    for option in reversed(SPEC_OPTIONS):
        command = option(command)
    return command


def parse_layers(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in WEIGHT_LAYERS]
    if unknown:
        raise click.BadParameter(
            f"unknown layer(s) {', '.join(unknown)}; choose from {', '.join(WEIGHT_LAYERS)}"
        )
    return names


def spec_fields(train_layers: str | None, reinit_layers: str | None, options: dict) -> dict:
    """The TrainSpec fields the flags give; layer lists only when given (their defaults depend)."""
    layers = {"train_layers": parse_layers(train_layers), "reinit_layers": parse_layers(reinit_layers)}
    return {**{k: v for k, v in layers.items() if v is not None}, **options}


def usage_error(exc) -> click.UsageError:
    """A pydantic ValidationError as one line naming each bad option."""
    return click.UsageError(
        "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in exc.errors())
    )
