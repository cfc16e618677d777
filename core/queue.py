"""The Celery app both sides configure the same way. The API only sends tasks by name, with ids."""

from __future__ import annotations

import logging
from functools import lru_cache

from celery import Celery
from kombu.exceptions import OperationalError as BrokerUnavailable

from core.config import Settings, get_settings

log = logging.getLogger(__name__)
TRAIN_QUEUE = "train"
PREPARE_QUEUE = "prepare"
TRAIN_TASK = "worker.tasks.finetune"
PREPARE_TASK = "worker.tasks.prepare_dataset"
ARCHIVE_TASK = "worker.tasks.build_model_archive"


def make_celery(settings: Settings, main: str = "finetune") -> Celery:
    app = Celery(main, broker=settings.broker_url)
    timeout = settings.broker_visibility_timeout
    # Redis: how soon an unacknowledged message comes back, and how often idle workers look for one.
    options: dict = {
        "visibility_timeout": timeout,
        "unacked_restore_interval": max(1, min(10, timeout // 2)),
        "unacked_restore_throttle": 1 if timeout < 600 else 10,
        "socket_connect_timeout": 3,
    }
    if settings.uses_filesystem_broker:
        app.conf.broker_transport = "core.filesystem_broker:Transport"  # safe first binds
        folder = settings.broker_dir / "queue"
        (settings.broker_dir / "processed").mkdir(parents=True, exist_ok=True)
        folder.mkdir(parents=True, exist_ok=True)
        options = {
            **options,
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "processed_folder": str(settings.broker_dir / "processed"),
            "control_folder": str(settings.broker_dir / "control"),  # not ./control wherever it starts
            "store_processed": False,
            # the folder is polled: kombu's default 1 s delayed every job from POST to its worker
            "polling_interval": 0.1,
        }
    app.conf.update(
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_acks_late=True,  # a worker killed mid-job leaves the message for another
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_routes={
            TRAIN_TASK: {"queue": TRAIN_QUEUE},
            PREPARE_TASK: {"queue": PREPARE_QUEUE},
            ARCHIVE_TASK: {"queue": PREPARE_QUEUE},
        },
        task_default_queue=TRAIN_QUEUE,
        worker_hijack_root_logger=False,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
    )
    return app


@lru_cache
def get_celery() -> Celery:
    return make_celery(get_settings(), main="finetune-client")


def _send(task: str, queue: str, *args: str) -> bool:
    """Publish; False when the broker is away (the row is saved, and the reconciler sends it later).

    Straight onto the queue through the default exchange: no exchange binding is looked up, so a
    broker that lost its bindings (a flushed or restarted Redis) still gets the message.
    """
    try:
        get_celery().send_task(task, args=list(args), exchange="", routing_key=queue)
        return True
    except BrokerUnavailable as exc:
        log.warning(
            "broker unavailable, %s %s stays in the database until the reconciler sends it: %s",
            task,
            args,
            exc,
        )
        return False


def enqueue_training(job_id: str) -> bool:
    return _send(TRAIN_TASK, TRAIN_QUEUE, job_id)


def enqueue_preparation(dataset_id: str) -> bool:
    return _send(PREPARE_TASK, PREPARE_QUEUE, dataset_id)


def enqueue_model_archive(job_id: str, fmt: str) -> bool:
    return _send(ARCHIVE_TASK, PREPARE_QUEUE, job_id, fmt)


def queued_message_count(queue: str) -> int:
    """Messages waiting in `queue` (not counting ones a worker holds unacknowledged)."""
    with get_celery().connection_for_write() as connection:
        return connection.default_channel.queue_declare(queue=queue, passive=False).message_count
