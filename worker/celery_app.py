"""The worker's Celery app (`celery -A worker.celery_app worker`, or `finetune worker`)."""

import logging

from celery.signals import worker_ready

from core.config import get_settings
from core.queue import make_celery
from core.storage import Storage
from core.weights import WeightsState, installed_weights, shown_weights_path
from model.network.compile_cache import enable_compile_cache
from model.training.warm_up import warm_up

enable_compile_cache(Storage(get_settings()).compile_cache_dir)  # before anything compiles
app = make_celery(get_settings())
app.conf.include = ["worker.tasks"]
log = logging.getLogger(__name__)


@worker_ready.connect
def _on_ready(sender=None, **_kwargs) -> None:
    from core.reconcile import Reconciler
    from worker.runner import shutdown

    queues = {queue.name for queue in sender.app.amqp.queues.consume_from.values()} if sender else set()
    shutdown.install(stop_consuming=lambda: [sender.cancel_task_queue(queue) for queue in queues])
    if "train" in queues:  # one reconciler per train worker: the jobs it might be handed
        Reconciler(get_settings().reconcile_seconds).start()
        weights = installed_weights(get_settings())
        log_weights = log.info if weights.state is WeightsState.OK else log.warning
        log_weights("pretrained weights (%s): %s", shown_weights_path(get_settings()), weights.describe())
        warm_up(get_settings().weights_path if weights.state is WeightsState.OK else None)
