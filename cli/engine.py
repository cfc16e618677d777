"""`finetune train`, `predict` and `export`: the engine on local files."""

from __future__ import annotations

import json
import shutil
import signal
import sys
from pathlib import Path

import click

from cli.engine_options import spec_fields, spec_options, usage_error
from cli.weights import download_weights, weights_file_option


@click.command()
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("runs/finetune"),
    show_default=True,
    help="Checkpoints, TensorBoard events and the export go here; rerun the same command to resume.",
)
@click.option("--restart", is_flag=True, help="Discard the run in --out and start over.")
@click.option(
    "--weights", default="imagenet", show_default=True, help="imagenet, random, or an export folder."
)
@weights_file_option
@spec_options
@click.option("--val-fraction", type=float, default=0.15, show_default=True)
@click.option("--test-fraction", type=float, default=0.15, show_default=True)
@click.option("--resize", type=click.Choice(["squash", "center_crop"]), default="squash", show_default=True)
def train(
    data,
    out_dir,
    restart,
    weights_file,
    train_layers,
    reinit_layers,
    val_fraction,
    test_fraction,
    resize,
    **options,
):
    """Finetune AlexNet on DATA: a ZIP or folder of class folders, or a `path label` text index."""
    from pydantic import ValidationError

    from cli.engine_progress import ProgressBars, StopOnInterrupt
    from model.data.dataset import SplitFractions
    from model.data.local_data import open_or_prepare
    from model.data.preprocess import PreprocessSpec
    from model.data.sources import DatasetError
    from model.exports.weights import WeightsError
    from model.training.checkpoint import CheckpointMismatch
    from model.training.loop import train as run_training
    from model.training.reports import TrainingDiverged
    from model.training.spec import SpecError, TrainSpec

    try:
        spec = TrainSpec(**spec_fields(train_layers, reinit_layers, options))
    except ValidationError as exc:
        raise usage_error(exc) from None
    try:
        _check_weights(spec, weights_file)
    except WeightsError as exc:
        raise click.ClickException(str(exc)) from None
    if restart:
        shutil.rmtree(out_dir / "run", ignore_errors=True)
    try:
        fractions = SplitFractions(val_fraction, test_fraction, options["seed"])
        dataset, reused = open_or_prepare(data, out_dir / "dataset", fractions, PreprocessSpec(resize=resize))
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    if reused:
        click.echo(f"using the dataset prepared earlier in {out_dir / 'dataset'} (the source is unchanged)")
    for item in dataset.manifest["rejected"]:
        click.echo(f"skipped {item['path']}: {item['reason']}", err=True)
    splits = dataset.manifest["splits"]
    click.echo(f"{len(dataset)} images, classes: {', '.join(dataset.classes)}, splits: {splits}")

    observer = ProgressBars()
    try:
        with StopOnInterrupt(observer):
            result = run_training(
                spec,
                dataset,
                out_dir / "run",
                imagenet_weights=weights_file,
                cache_dir=out_dir / "features",
                observer=observer,
            )
    except CheckpointMismatch as exc:
        raise click.ClickException(f"{exc} (pass --restart)") from None
    except (WeightsError, TrainingDiverged, SpecError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        observer.close()
    if result.status == "cancelled":
        click.echo(
            f"stopped {observer.position()}; the checkpoint is saved: rerun the same command to resume"
        )
        sys.exit(130)
    if result.already_finished:
        click.echo(f"already finished in {out_dir / 'run'} (pass --restart to train again)")
    click.echo(f"best epoch {result.best_epoch}: val accuracy {result.best_val_accuracy:.4f}")
    if result.test:
        click.echo(f"test accuracy {result.test.accuracy:.4f}")
    click.echo(f"export: {result.export_dir}")


def _check_weights(spec, weights_file: Path) -> None:
    """Fail before any decoding when the starting weights are missing or unreadable."""
    from model.training.assembly import source_weights

    source_weights(spec, weights_file)


@click.command()
@click.argument("export")
@click.argument(
    "images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True)
@weights_file_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def predict(export, images, top_k, weights_file, as_json):
    """Classify IMAGES with EXPORT (an export folder, or 'imagenet' for the pretrained network)."""
    from model.data.preprocess import ImageError
    from model.exports.export import imagenet_predictor, load_export
    from model.exports.weights import WeightsError

    try:
        predictor = imagenet_predictor(weights_file) if export == "imagenet" else load_export(export)
        results = predictor.predict([path.read_bytes() for path in images], top_k=top_k)
    except (ImageError, WeightsError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        payload = [{"image": str(p), "predictions": r} for p, r in zip(images, results)]
        click.echo(json.dumps(payload, indent=2))
        return
    for path, ranked in zip(images, results):
        click.echo(str(path))
        for item in ranked:
            click.echo(f"  {item['probability']:.4f}  {item['label']}")


@click.command("export")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["onnx", "tflite"]), required=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the model, labels.json and preprocess.json go [default: EXPORT_DIR-FORMAT].",
)
def export(export_dir, fmt, out_dir):
    """Convert EXPORT_DIR (a finetune export) to ONNX or TFLite: uint8 RGB images in, probabilities out."""
    from model.exports.portable import portable_export

    target = out_dir or export_dir.with_name(f"{export_dir.name}-{fmt}")
    try:
        click.echo(str(portable_export(export_dir, fmt, target)))
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def engine() -> None:
    """The finetuning engine alone."""


for command in (train, predict, export, download_weights):
    engine.add_command(command)

if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(engine())
