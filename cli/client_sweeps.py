"""`finetune client sweep | sweep-status | sweep-cancel`: sweeps from a terminal."""

from __future__ import annotations

import json

import click

from cli.client import _api, _run, client
from cli.engine_options import spec_fields, spec_options

DISTRIBUTIONS = ("choice", "uniform", "log_uniform", "int")


def _value(text: str):
    """A flag's value as JSON where it is (numbers, true, null), else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _pairs(entries: tuple[str, ...], flag: str) -> list[tuple[str, str]]:
    pairs = []
    for entry in entries:
        field, sep, values = entry.partition("=")
        if not sep or not field or not values:
            raise click.BadParameter(f"expected FIELD=VALUES, got {entry!r}", param_hint=flag)
        pairs.append((field.strip(), values))
    return pairs


def parse_grid(entries: tuple[str, ...]) -> dict:
    """`learning_rate=0.01,0.001` → {"learning_rate": [0.01, 0.001]}."""
    return {field: [_value(v) for v in values.split(",")] for field, values in _pairs(entries, "--grid")}


def parse_space(entries: tuple[str, ...]) -> dict:
    """`learning_rate=log_uniform:1e-4:1e-1`, `optimizer=choice:sgd,adam`, `num_epochs=int:2:8`."""
    space = {}
    for field, text in _pairs(entries, "--space"):
        kind, _, rest = text.partition(":")
        if kind not in DISTRIBUTIONS or not rest:
            raise click.BadParameter(
                f"{field}: expected one of {', '.join(DISTRIBUTIONS)} then ':' and values, got {text!r}",
                param_hint="--space",
            )
        values = rest.split(",") if kind == "choice" else rest.split(":")
        space[field] = {kind: [_value(v) for v in values]}
    return space


@client.command()
@click.argument("dataset_id")
@click.option("--grid", multiple=True, metavar="FIELD=V1,V2,...", help="Try every combination.")
@click.option("--random", "n_trials", type=int, default=None, help="Draw this many trials from --space.")
@click.option("--space", multiple=True, metavar="FIELD=KIND:ARGS",
              help="choice:a,b | uniform:LO:HI | log_uniform:LO:HI | int:LO:HI")  # fmt: skip
@click.option("--space-seed", type=int, default=0, show_default=True)
@click.option("--weights", default="imagenet", show_default=True, help="imagenet, random, or job:<id>.")
@spec_options
@click.option("--follow/--no-follow", default=False, help="Show the trials until every one has ended.")
def sweep(dataset_id, grid, n_trials, space, space_seed, weights, train_layers, reinit_layers, follow,
          **options):  # fmt: skip
    """Start a sweep on DATASET_ID: the options of `finetune train` are every trial's base."""
    if bool(grid) == (n_trials is not None):
        raise click.UsageError("give --grid FIELD=VALUES (one or more) or --random N with --space")
    base = {"weights": weights, **spec_fields(train_layers, reinit_layers, options)}
    random = {"n_trials": n_trials, "seed": space_seed, "space": parse_space(space)} if n_trials else None
    created = _run(
        lambda: _api().create_sweep(
            dataset_id, grid=parse_grid(grid) if grid else None, random=random, **base
        )
    )
    click.echo(created["id"])
    if follow:
        _follow(created["id"])


@client.command("sweep-status")
@click.argument("sweep_id")
@click.option("--follow/--no-follow", default=False, help="Poll until every trial has ended.")
def sweep_status(sweep_id, follow):
    """The trials as a table; * marks the best."""
    if follow:
        _follow(sweep_id)
    else:
        _print_table(_run(lambda: _api().get_sweep(sweep_id)))


@client.command("sweep-cancel")
@click.argument("sweep_id")
def sweep_cancel(sweep_id):
    """Cancel every trial still queued or running."""
    click.echo(_run(lambda: _api().cancel_sweep(sweep_id))["status"])


def _follow(sweep_id: str) -> None:
    seen = {}

    def show_changes(sweep: dict) -> None:
        for trial in sweep["trials"]:
            if seen.get(trial["job_id"]) != trial["status"]:
                seen[trial["job_id"]] = trial["status"]
                click.echo(f"{trial['job_id']}  {trial['status']:<10} {_params(trial)}", err=True)

    done = _run(lambda: _api().wait_for_sweep(sweep_id, on_poll=show_changes))
    _print_table(done)
    if done["status"] != "succeeded":
        raise SystemExit(1)


def _params(trial: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in trial["params"].items())


def _print_table(sweep: dict) -> None:
    click.echo(f"sweep {sweep['id']}: {sweep['status']}, best {sweep['best_job_id'] or '-'}")
    ranked = sorted(sweep["trials"], key=lambda t: (-(t["best_val_accuracy"] or -1), t["best_val_loss"] or 0))
    for trial in ranked:
        accuracy = "" if trial["best_val_accuracy"] is None else f"{trial['best_val_accuracy']:.4f}"
        loss = "" if trial["best_val_loss"] is None else f"{trial['best_val_loss']:.4f}"
        mark = "*" if trial["job_id"] == sweep["best_job_id"] else " "
        click.echo(
            f"{mark} {trial['job_id']}  {trial['status']:<10} {accuracy:>7} {loss:>8}  {_params(trial)}"
        )
