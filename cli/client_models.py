"""`finetune client download | tensorboard | predict`: models and predictions from a terminal."""

from __future__ import annotations

import csv
from pathlib import Path

import click

from cli.client import _api, _run, client

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@client.command()
@click.argument("job_id")
@click.option("--to", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["savedmodel", "onnx", "tflite"]),
    default="savedmodel",
    show_default=True,
)
def download(job_id, to, fmt):
    """The job's model as a ZIP, with a byte progress bar (ONNX and TFLite are converted on their
    first download: it says so while it waits)."""
    default = f"finetune-{job_id}.zip" if fmt == "savedmodel" else f"finetune-{job_id}-{fmt}.zip"
    with _Transfer(f"{fmt}") as transfer:
        path = _run(
            lambda: _api().download_model(
                job_id, to or Path(default), fmt, progress=transfer.progress, building=transfer.building
            )
        )
    click.echo(str(path))


@client.command()
@click.argument("job_id")
@click.option("--to", type=click.Path(dir_okay=False, path_type=Path), default=None)
def tensorboard(job_id, to):
    """The job's TensorBoard event files as a ZIP, with a byte progress bar."""
    with _Transfer("tensorboard") as transfer:
        path = _run(
            lambda: _api().download_tensorboard(
                job_id, to or Path(f"finetune-{job_id}-tensorboard.zip"), progress=transfer.progress
            )  # fmt: skip
        )
    click.echo(str(path))


class _Transfer:
    """A byte progress bar on stderr, and a 'converting' line while the service builds the file."""

    def __init__(self, label: str):
        self.label, self.bar = label, None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def building(self, seconds: float) -> None:
        click.echo(f"converting {self.label}… {seconds:.0f} s", err=True)

    def progress(self, received: int, total: int | None) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, unit="B", unit_scale=True, desc="download")
        self.bar.update(received - self.bar.n)


@client.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--job", "job_id", default=None, help="A succeeded job (default: the ImageNet network).")
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Images per request; fewer are sent when the service asks.")  # fmt: skip
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write every image's top-k to this CSV file.")  # fmt: skip
def predict(paths, job_id, top_k, batch_size, csv_file):
    """Classify images: any number of files and folders (their images, recursively), one line per
    image with its top-k."""
    images = image_files(paths)
    if not images:
        raise click.ClickException("no image files found (" + ", ".join(sorted(IMAGE_SUFFIXES)) + ")")
    model = None if job_id else "imagenet"
    answers = _api().predict_many(images, job_id=job_id, model=model, top_k=top_k, batch_size=batch_size)
    rows = []

    def show_each() -> None:  # as each batch is answered
        for path, ranked in answers:
            click.echo(
                f"{path}\t" + ", ".join(f"{item['label']} {item['probability']:.4f}" for item in ranked)
            )
            rows.extend((str(path), rank, item["label"], item["class_index"], item["probability"])
                        for rank, item in enumerate(ranked, start=1))  # fmt: skip

    _run(show_each)
    if csv_file:
        with open(csv_file, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(("image", "rank", "label", "class_index", "probability"))
            writer.writerows(rows)


def image_files(paths: tuple[Path, ...]) -> list[Path]:
    """The files given, and the image files inside the folders given, in a stable order."""
    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(path)
    return found
