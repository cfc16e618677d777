"""`finetune api | worker | migrate | up | token`: running the service."""

from __future__ import annotations

import ipaddress
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


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_open_binding(host: str) -> None:
    """Listening beyond this machine with no tokens would hand the service to anyone who can reach it."""
    from sqlalchemy import exists, select

    from core.db import session_scope
    from core.tables import ApiTokenRow

    if is_loopback(host) or _settings().api_tokens:
        return
    with session_scope() as session:
        if session.scalar(select(exists().select_from(ApiTokenRow))):
            return
    raise click.ClickException(
        f"refusing to listen on {host} with no API tokens: create one with `finetune token create NAME` "
        "or set FINETUNE_API_TOKENS, or listen on 127.0.0.1"
    )


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

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    host, port = listen_address(host, port)
    click.echo(
        f"finetune: data in {settings.data_dir}, database {settings.database_url.split('@')[-1]}, "
        f"broker {settings.broker_url.split('@')[-1]}"
    )
    if not settings.weights_path.is_file():
        click.echo(
            f"note: {settings.weights_path} is not installed; `finetune download-weights` fetches it "
            "(until then, jobs can use weights 'random')"
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
    """API tokens: once one exists, every endpoint but /healthz and /readyz needs it."""


@token.command("create")
@click.argument("name")
def token_create(name):
    """Create a token for NAME (its owner); it is printed once and stored hashed."""
    from sqlalchemy import select

    from api.deps import hash_token
    from core.db import session_scope
    from core.tables import ApiTokenRow

    value = "ft_" + secrets.token_urlsafe(32)
    with session_scope() as session:
        if session.scalar(select(ApiTokenRow).where(ApiTokenRow.name == name)):
            raise click.ClickException(f"a token named {name!r} exists; revoke it first")
        session.add(ApiTokenRow(name=name, token_hash=hash_token(value)))
    click.echo(value)


@token.command("revoke")
@click.argument("name")
def token_revoke(name):
    from sqlalchemy import delete

    from core.db import session_scope
    from core.tables import ApiTokenRow

    with session_scope() as session:
        if not session.execute(delete(ApiTokenRow).where(ApiTokenRow.name == name)).rowcount:
            raise click.ClickException(f"no token named {name!r}")
    click.echo(f"revoked {name}")


COMMANDS = (migrate, api, worker, worker_alive, up, token)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
