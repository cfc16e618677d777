"""`finetune train`, `finetune predict`, `finetune download-weights`: the engine on local files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from model.layout import WEIGHT_LAYERS

DEFAULT_WEIGHTS = "data/bvlc_alexnet.npy"


def _layers(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in WEIGHT_LAYERS]
    if unknown:
        raise click.BadParameter(
            f"unknown layer(s) {', '.join(unknown)}; choose from {', '.join(WEIGHT_LAYERS)}"
        )
    return names


@click.command()
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("runs/finetune"),
    show_default=True,
    help="Checkpoints, TensorBoard events and the export go here; rerun to resume.",
)
@click.option(
    "--weights",
    default="imagenet",
    show_default=True,
    help="imagenet, random, or an export folder to continue from.",
)
@click.option(
    "--weights-file",
    type=click.Path(path_type=Path),
    envvar="FINETUNE_WEIGHTS_PATH",
    default=DEFAULT_WEIGHTS,
    show_default=True,
)
@click.option("--train-layers", default="fc7,fc8", show_default=True)
@click.option("--reinit-layers", default="fc8", show_default=True)
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam"]), default="sgd", show_default=True)
@click.option("--learning-rate", type=float, default=0.001, show_default=True)
@click.option("--momentum", type=float, default=0.9, show_default=True)
@click.option("--epochs", "num_epochs", type=int, default=10, show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option(
    "--dropout", "dropout_rate", type=float, default=0.5, show_default=True, help="Probability of dropping."
)
@click.option("--flip/--no-flip", "augment_flip", default=True, show_default=True)
@click.option(
    "--patience",
    "early_stopping_patience",
    type=int,
    default=None,
    help="Early stopping after N epochs without improvement.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--val-fraction", type=float, default=0.15, show_default=True)
@click.option("--test-fraction", type=float, default=0.15, show_default=True)
@click.option("--resize", type=click.Choice(["squash", "center_crop"]), default="squash", show_default=True)
@click.option("--mixed-precision", is_flag=True)
@click.option("--xla", is_flag=True)
def train(
    data, out_dir, weights_file, train_layers, reinit_layers, val_fraction, test_fraction, resize, **options
):
    """Finetune AlexNet on DATA: a ZIP or folder of class folders, or a `path label` text index."""
    from pydantic import ValidationError
    from tqdm import tqdm

    from model.checkpoint import CheckpointMismatch
    from model.dataset import PreparedDataset, SplitFractions, prepare_dataset
    from model.preprocess import PreprocessSpec
    from model.reports import TrainingDiverged, TrainingObserver
    from model.sources import DatasetError
    from model.spec import TrainSpec
    from model.training import train as run_training
    from model.weights import WeightsError

    try:
        spec = TrainSpec(train_layers=_layers(train_layers), reinit_layers=_layers(reinit_layers), **options)
    except ValidationError as exc:
        raise click.UsageError(
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        ) from None
    try:
        if (data / "manifest.json").is_file():
            dataset = PreparedDataset(data)
        else:
            click.echo(f"preparing {data} ...")
            dataset = prepare_dataset(
                data,
                out_dir / "dataset",
                SplitFractions(val_fraction, test_fraction, options["seed"]),
                PreprocessSpec(resize=resize),
            )
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    for item in dataset.manifest["rejected"]:
        click.echo(f"skipped {item['path']}: {item['reason']}", err=True)
    click.echo(
        f"{len(dataset)} images, classes: {', '.join(dataset.classes)}, splits: {dataset.manifest['splits']}"
    )

    class ProgressBar(TrainingObserver):
        bar = None

        def on_start(self, info):
            self.bar = tqdm(
                total=info.num_epochs * info.steps_per_epoch, initial=info.resumed_from_step, unit="step"
            )

        def on_phase(self, phase, done, total):
            if done == total:
                click.echo(f"{phase}: {total} images done")

        def on_step(self, report):
            self.bar.set_postfix(
                epoch=report.epoch,
                loss=f"{report.loss:.4f}",
                acc=f"{report.accuracy:.3f}",
                img_s=f"{report.images_per_second:.0f}",
            )
            self.bar.update(1)

        def on_epoch(self, report):
            self.bar.write(
                f"epoch {report.epoch}: val loss {report.loss:.4f}, val accuracy {report.accuracy:.4f}"
                + (" (best)" if report.is_best else "")
            )

    observer = ProgressBar()
    try:
        result = run_training(
            spec,
            dataset,
            out_dir / "run",
            imagenet_weights=weights_file,
            cache_dir=out_dir / "features",
            observer=observer,
        )
    except (WeightsError, CheckpointMismatch, TrainingDiverged) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if observer.bar:
            observer.bar.close()
    click.echo(f"best epoch {result.best_epoch}: val accuracy {result.best_val_accuracy:.4f}")
    if result.test:
        click.echo(f"test accuracy {result.test.accuracy:.4f}")
    click.echo(f"export: {result.export_dir}")


@click.command()
@click.argument("export")
@click.argument(
    "images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--weights-file",
    type=click.Path(path_type=Path),
    envvar="FINETUNE_WEIGHTS_PATH",
    default=DEFAULT_WEIGHTS,
    show_default=True,
    help="Used when EXPORT is 'imagenet'.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def predict(export, images, top_k, weights_file, as_json):
    """Classify IMAGES with EXPORT (an export folder, or 'imagenet' for the pretrained network)."""
    from model.export import imagenet_predictor, load_export
    from model.preprocess import ImageError
    from model.weights import WeightsError

    try:
        predictor = imagenet_predictor(weights_file) if export == "imagenet" else load_export(export)
        results = predictor.predict([path.read_bytes() for path in images], top_k=top_k)
    except (ImageError, WeightsError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(
            json.dumps([{"image": str(p), "predictions": r} for p, r in zip(images, results)], indent=2)
        )
        return
    for path, ranked in zip(images, results):
        click.echo(str(path))
        for item in ranked:
            click.echo(f"  {item['probability']:.4f}  {item['label']}")


@click.command("download-weights")
@click.option(
    "--to",
    "target",
    type=click.Path(path_type=Path),
    envvar="FINETUNE_WEIGHTS_PATH",
    default=DEFAULT_WEIGHTS,
    show_default=True,
)
@click.option("--url", default=None, help="Another mirror of bvlc_alexnet.npy.")
def download_weights(target, url):
    """Download bvlc_alexnet.npy (233 MB) and check every layer's shape."""
    from tqdm import tqdm

    from model.weights import WEIGHTS_SIZE_BYTES, WEIGHTS_URL, WeightsError
    from model.weights import download_weights as download

    bar = tqdm(total=WEIGHTS_SIZE_BYTES, unit="B", unit_scale=True)

    def progress(done, total):
        bar.total = total
        bar.update(done - bar.n)

    try:
        path = download(target, url or WEIGHTS_URL, progress)
    except (OSError, WeightsError) as exc:
        raise click.ClickException(f"download failed: {exc}") from None
    finally:
        bar.close()
    click.echo(f"saved {path}")


@click.group()
def engine() -> None:
    """The finetuning engine alone."""


for command in (train, predict, download_weights):
    engine.add_command(command)

if __name__ == "__main__":
    sys.exit(engine())
