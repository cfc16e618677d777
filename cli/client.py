"""`finetune client ...`: the HTTP API from a terminal, on FINETUNE_URL with FINETUNE_TOKEN."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cli.engine_options import spec_fields, spec_options


def _api():
    from client import FinetuneClient

    return FinetuneClient()


def _run(call):
    from client import ClientError

    try:
        return call()
    except ClientError as exc:
        raise click.ClickException(f"{exc.error}: {exc.detail}") from None


@click.group()
def client() -> None:
    """Talk to a running finetune service (FINETUNE_URL, FINETUNE_TOKEN)."""


@client.command()
@click.argument("zip_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None)
@click.option("--val-fraction", type=float, default=0.15, show_default=True)
@click.option("--test-fraction", type=float, default=0.15, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until it is prepared.")
def upload(zip_file, name, val_fraction, test_fraction, seed, wait):
    """Upload a dataset ZIP with a byte progress bar; prints the dataset."""
    from tqdm import tqdm

    api = _api()
    with tqdm(total=zip_file.stat().st_size, unit="B", unit_scale=True, desc="upload") as bar:

        def progress(sent: int, _total: int) -> None:
            bar.update(sent - bar.n)

        dataset = _run(
            lambda: api.upload_dataset(zip_file, name, val_fraction, test_fraction, seed, progress)
        )
    if wait:
        dataset = api.wait_for_dataset(dataset["id"])
    click.echo(json.dumps(dataset, indent=2))
    if dataset["status"] == "failed":
        raise click.ClickException(f"the dataset failed: {dataset['error']}")


@client.command()
@click.argument("dataset_id")
@click.option("--weights", default="imagenet", show_default=True, help="imagenet, random, or job:<id>.")
@spec_options
@click.option("--follow/--no-follow", default=False, help="Follow the job until it ends.")
def submit(dataset_id, weights, train_layers, reinit_layers, follow, **options):
    """Start a finetune of DATASET_ID with the same options as `finetune train`."""
    fields = spec_fields(train_layers, reinit_layers, options)
    job = _run(lambda: _api().create_job(dataset_id, weights=weights, **fields))
    click.echo(job["id"])
    if follow:
        _follow(job["id"])


@client.command("follow")
@click.argument("job_id")
def follow_command(job_id):
    """A live progress bar and the validation table per epoch, until the job ends."""
    _follow(job_id)


def _follow(job_id: str) -> None:
    from tqdm import tqdm

    from client import ClientError

    bar = None
    events = _api().follow(job_id)
    while True:
        try:
            name, data = next(events)
        except StopIteration:
            return
        except ClientError as exc:
            raise click.ClickException(f"{exc.error}: {exc.detail}") from None
        if name == "status":
            progress = data["progress"]
            total = (progress.get("num_epochs") or 0) * (progress.get("steps_per_epoch") or 0)
            if bar is None and total:
                bar = tqdm(total=total, unit="step", desc="training")
            if bar is not None and progress.get("step") is not None:
                bar.update(progress["step"] - bar.n)
        elif name == "val":
            line = f"epoch {data['epoch']}: val loss {data['loss']:.4f}, val accuracy {data['accuracy']:.4f}"
            (bar.write if bar else click.echo)(line)
        elif name == "end":
            if bar is not None:
                bar.close()
            click.echo(f"{data['status']}" + (f": {data['error']}" if data.get("error") else ""))
            if data["status"] != "succeeded":
                raise SystemExit(1)


@client.command("list")
@click.option("--status", default=None)
def list_jobs(status):
    """Jobs, newest first."""
    for job in _run(lambda: _api().list_jobs(status=status, limit=200))["data"]:
        best = job["best"]["val_accuracy"] if job["best"] else None
        click.echo(f"{job['id']}  {job['status']:<10} {'' if best is None else f'{best:.4f}'}")


@client.command()
@click.argument("job_id")
def cancel(job_id):
    click.echo(_run(lambda: _api().cancel_job(job_id))["status"])


@client.command()
@click.argument("job_id")
def resume(job_id):
    click.echo(_run(lambda: _api().resume_job(job_id))["status"])


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
    """The job's model as a ZIP (the first ONNX or TFLite download converts it first)."""
    default = f"finetune-{job_id}.zip" if fmt == "savedmodel" else f"finetune-{job_id}-{fmt}.zip"
    path = _run(lambda: _api().download_model(job_id, to or Path(default), fmt))
    click.echo(str(path))


@client.command()
@click.argument(
    "images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--job", "job_id", default=None, help="A succeeded job (default: the ImageNet network).")
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True)
def predict(images, job_id, top_k):
    answer = _run(lambda: _api().predict(list(images), job_id=job_id, model=None if job_id else "imagenet",
                                         top_k=top_k))  # fmt: skip
    for path, ranked in zip(images, answer["predictions"]):
        click.echo(str(path))
        for item in ranked:
            click.echo(f"  {item['probability']:.4f}  {item['label']}")
