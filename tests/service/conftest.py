"""Service tests run against the real PostgreSQL and Redis on this machine, each session in its own database.

FINETUNE_TEST_POSTGRES (default postgresql+psycopg://postgres@127.0.0.1:5432) and FINETUNE_TEST_REDIS
(default redis://127.0.0.1:6379/11) say where they are.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import psycopg
import pytest
import redis

POSTGRES = os.environ.get("FINETUNE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")
REDIS = os.environ.get("FINETUNE_TEST_REDIS", "redis://127.0.0.1:6379/11")


def admin_connection():
    return psycopg.connect(
        POSTGRES.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True
    )


def create_database() -> str:
    name = f"finetune_test_{uuid.uuid4().hex[:10]}"
    with admin_connection() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    with admin_connection() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reset_caches() -> None:
    from core.config import get_settings
    from core.db import get_engine, get_sessionmaker
    from core.queue import get_celery

    for cached in (get_settings, get_sessionmaker, get_celery):
        cached.cache_clear()
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()


@pytest.fixture(scope="session")
def service_env(tmp_path_factory, weights_file_for_service):
    """Environment of the service under test: a fresh database, a Redis db, a data folder with weights."""
    database = create_database()
    data_dir = tmp_path_factory.mktemp("data")
    env = {
        "FINETUNE_DATABASE_URL": f"{POSTGRES}/{database}",
        "FINETUNE_BROKER_URL": REDIS,
        "FINETUNE_DATA_DIR": str(data_dir),
        "FINETUNE_WEIGHTS_PATH": str(weights_file_for_service),
        "FINETUNE_METRICS_FLUSH_SECONDS": "0.3",
        "FINETUNE_CANCEL_POLL_SECONDS": "0.2",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    redis.Redis.from_url(REDIS).flushdb()
    reset_caches()
    from core.migrate import upgrade

    upgrade(env["FINETUNE_DATABASE_URL"])
    yield env
    reset_caches()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    drop_database(database)


@pytest.fixture(scope="session")
def weights_file_for_service(tmp_path_factory) -> Path:
    from model.exports.weights import write_synthetic_weights

    return write_synthetic_weights(tmp_path_factory.mktemp("weights") / "bvlc_alexnet.npz", seed=0)


@pytest.fixture()
def clean_tables(service_env):
    """Each test starts from empty tables, an empty queue and no files of earlier jobs.

    Every finished job holds a full export (about 220 MB): kept for the whole session they would
    take tens of GB. Everything in the data folder goes but the shared caches (features, compiled
    steps), whatever the storage layout names its other folders."""
    from sqlalchemy import text

    from core.config import get_settings
    from core.db import get_engine
    from core.storage import Storage

    with get_engine().begin() as connection:
        connection.execute(text("TRUNCATE val_metrics, train_metrics, jobs, datasets, api_tokens CASCADE"))
    redis.Redis.from_url(REDIS).flushdb()
    storage = Storage(get_settings())
    for entry in storage.root.iterdir():
        if entry in (storage.feature_cache_dir, storage.compile_cache_dir):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    yield


@pytest.fixture()
def client(clean_tables):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from testkit.service import LOOPBACK_CLIENT

    with TestClient(create_app(), client=LOOPBACK_CLIENT) as test_client:
        yield test_client
