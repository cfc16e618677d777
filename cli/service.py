"""`finetune api | worker | migrate | up | token`: running the service."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys

import click

WORKER_QUEUES = ("train", "prepare")


def _settings():
    from core.config import get_settings

    return get_settings()


def refuse_open_binding(host: str) -> None:
    """Listening beyond this machine must never open the service to whoever can reach it."""
    from core.auth import open_binding_refusal, tokens_ever_existed
    from core.db import session_scope

    settings = _settings()
    with session_scope() as session:
        refusal = open_binding_refusal(
            settings.auth, host, bool(settings.api_tokens), tokens_ever_existed(session)
        )
    if refusal:
        raise click.ClickException(refusal)


@click.command()
def migrate():
    """Upgrade the database to the newest schema (waits for it to come up)."""
    from core.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    click.echo("database is at the newest revision")


def listen_options(command):
    command = click.option("--port", type=int, default=None, help="Default: FINETUNE_PORT (8000).")(command)
    return click.option("--host", default=None, help="Default: FINETUNE_HOST (127.0.0.1).")(command)


def listen_address(host: str | None, port: int | None) -> tuple[str, int]:
    """Where to listen: the options, else the settings; an open address needs a token (after migrations)."""
    settings = _settings()
    host, port = host or settings.host, port or settings.port
    refuse_open_binding(host)
    return host, port


def serve_api(host: str, port: int) -> None:
    import uvicorn

    uvicorn.run("api.main:app", host=host, port=port, log_level="info")


@click.command()
@listen_options
def api(host, port):
    """Serve the HTTP API with Uvicorn."""
    serve_api(*listen_address(host, port))


def worker_argv(queue: str, extra: tuple[str, ...] = ()) -> list[str]:
    # solo pool: the job runs in the worker's main process, so SIGTERM reaches it and kill -9 really kills it
    return [
        "worker",
        "-Q",
        queue,
        "--pool",
        "solo",
        "-n",
        f"{queue}@%h",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
        *extra,
    ]


@click.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--queue",
    type=click.Choice(WORKER_QUEUES),
    default="train",
    show_default=True,
    help="train: one finetune at a time (one per GPU); prepare: dataset decoding.",
)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(queue, celery_args):
    """Run a Celery worker; extra arguments go to Celery."""
    from worker.celery_app import app
    from worker.heartbeat import start_heartbeat

    start_heartbeat(queue, _settings().data_dir)
    app.worker_main(worker_argv(queue, celery_args))


@click.command("worker-alive")
@click.option("--queue", type=click.Choice(WORKER_QUEUES), default="train", show_default=True)
@click.option("--max-age", type=float, default=30.0, show_default=True, help="Seconds.")
def worker_alive(queue, max_age):
    """Exit 0 if this machine's worker beat within --max-age seconds (a container health check)."""
    from worker.heartbeat import seconds_since_beat

    age = seconds_since_beat(queue, _settings().data_dir)
    if age is None or age > max_age:
        since = "ever" if age is None else f"{age:.1f} s"
        raise click.ClickException(f"no heartbeat from the {queue} worker for {since}")
    click.echo(f"{queue} worker alive ({age:.1f} s ago)")


def _exit_on_signal(signum, _frame):
    raise SystemExit(128 + signum)


@click.command()
@listen_options
def up(host, port):
    """Migrations, the API and the workers together.

    With no URLs set: SQLite and a folder broker in FINETUNE_DATA_DIR.
    """
    from core.migrate import upgrade
    from core.weights import WeightsState, installed_weights

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    host, port = listen_address(host, port)
    click.echo(
        f"finetune: data in {settings.data_dir}, database {settings.database_url.split('@')[-1]}, "
        f"broker {settings.broker_url.split('@')[-1]}"
    )
    weights = installed_weights(settings)
    if weights.state is not WeightsState.OK:
        click.echo(
            f"note: the pretrained weights ({settings.weights_path}) are {weights.describe()}; "
            "`finetune download-weights` installs them (until then, jobs can use weights 'random')"
        )
    workers = [
        subprocess.Popen([sys.executable, "-m", "cli.main", "worker", "--queue", queue])
        for queue in WORKER_QUEUES
    ]
    # Uvicorn re-raises the SIGTERM it handled once it has shut down; with the default handler that
    # ends this process before the workers are stopped, so it becomes an exception here instead.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        serve_api(host, port)
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


@click.group()
def token():
    """API tokens: once one was created, every endpoint but /healthz and /readyz needs one, for good."""


@token.command("create")
@click.argument("name")
def token_create(name):
    """Create a token for NAME (its owner); it is printed once and stored hashed.

    A revoked name can be given a new token; a live one must be revoked first."""
    from sqlalchemy import select

    from core.auth import hash_token
    from core.db import session_scope
    from core.tables import ApiTokenRow, utcnow

    value = "ft_" + secrets.token_urlsafe(32)
    with session_scope() as session:
        row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.name == name))
        if row is not None and row.revoked_at is None:
            raise click.ClickException(f"a token named {name!r} exists; revoke it first")
        row = row or ApiTokenRow(name=name)
        row.token_hash, row.created_at, row.revoked_at = hash_token(value), utcnow(), None
        session.add(row)
    click.echo(value)


@token.command("revoke")
@click.argument("name")
def token_revoke(name):
    """Revoke NAME's token at once. Auth stays on, even when no live token is left."""
    from sqlalchemy import update

    from core.db import session_scope
    from core.tables import ApiTokenRow, utcnow

    with session_scope() as session:
        revoked = session.execute(
            update(ApiTokenRow)
            .where(ApiTokenRow.name == name, ApiTokenRow.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        ).rowcount
    if not revoked:
        raise click.ClickException(f"no live token named {name!r}")
    click.echo(f"revoked {name}")


@token.command("list")
def token_list():
    """Every token's owner, when it was made, and whether it is revoked (never the token itself)."""
    from sqlalchemy import select

    from core.db import session_scope
    from core.tables import ApiTokenRow

    with session_scope() as session:
        rows = session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.name)).all()
        for row in rows:
            state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "live"
            click.echo(f"{row.name}\tcreated {row.created_at:%Y-%m-%d %H:%M}\t{state}")
    if not rows:
        click.echo("no tokens")


COMMANDS = (migrate, api, worker, worker_alive, up, token)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
