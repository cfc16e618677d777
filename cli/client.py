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
    """The call's answer; an error answer, or no answer at all, is one line and exit status 1."""
    from client import ClientError, ServiceUnreachable

    try:
        return call()
    except ServiceUnreachable as exc:
        raise click.ClickException(exc.detail) from None
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
@click.option("--name", default=None, help="What people call this job.")
@click.option("--note", default=None, help="Anything worth remembering about it.")
@spec_options
@click.option("--follow/--no-follow", default=False, help="Follow the job until it ends.")
def submit(dataset_id, weights, name, note, train_layers, reinit_layers, follow, **options):
    """Start a finetune of DATASET_ID with the same options as `finetune train`."""
    fields = spec_fields(train_layers, reinit_layers, options)
    job = _run(lambda: _api().create_job(dataset_id, weights=weights, name=name, note=note, **fields))
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
@click.option("--status", default=None, help="Only jobs in this state.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="The API's JSON, for scripts.")
def list_jobs(status, limit, as_json):
    """Jobs, newest first, as a table."""
    api = _api()
    jobs = _run(lambda: api.list_jobs(status=status, limit=limit))["data"]
    if as_json:
        click.echo(json.dumps(jobs, indent=2))
        return
    names = {d["id"]: d["name"] for d in _run(lambda: api.list_datasets(limit=500))["data"]}
    rows = [
        (
            job["id"],
            job.get("name") or "",
            job["status"],
            names.get(job["dataset_id"], "(deleted)"),
            f"{job['best']['val_accuracy']:.4f}" if job["best"] else "",
            job["created_at"][:16].replace("T", " "),
            f"sweep {job['sweep_id'][:8]}" if job.get("sweep_id") else "",
        )
        for job in jobs
    ]
    print_table(("ID", "NAME", "STATUS", "DATASET", "BEST VAL ACC", "CREATED (UTC)", ""), rows)


def print_table(headers: tuple[str, ...], rows: list[tuple]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    for row in (headers, *rows):
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


@client.command()
@click.argument("job_id")
@click.option("--wait", is_flag=True, help="Wait until the job has stopped; print its final state.")
def cancel(job_id, wait):
    """Cancel a job: a queued one at once, a running one within a step (it checkpoints first)."""
    api = _api()
    job = _run(lambda: api.cancel_job(job_id))
    click.echo("cancelled" if job["status"] == "cancelled" else "cancel requested")
    if wait and job["status"] not in ("succeeded", "failed", "cancelled"):
        for name, data in _run(lambda: list(api.follow(job_id))):
            if name == "end":
                click.echo(data["status"])


@client.command()
@click.argument("job_id")
def resume(job_id):
    """Continue a cancelled or failed job from its last checkpoint."""
    click.echo(_run(lambda: _api().resume_job(job_id))["status"])


@client.command()
@click.argument("kind", type=click.Choice(["job", "sweep", "dataset"]))
@click.argument("ids", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(kind, ids, yes):
    """Delete jobs, sweeps (with their trials) or datasets, with their files."""
    api = _api()
    what = f"{len(ids)} {kind}{'' if len(ids) == 1 else 's'}"
    if not yes:
        click.confirm(f"delete {what} and their files?", abort=True)
    remove = {"job": api.delete_job, "sweep": api.delete_sweep, "dataset": api.delete_dataset}[kind]
    for item in ids:
        _run(lambda item=item: remove(item))
        click.echo(f"deleted {kind} {item}")
