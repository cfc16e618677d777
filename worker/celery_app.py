"""The worker's Celery app (`celery -A worker.celery_app worker`, or `finetune worker`)."""

from celery.signals import worker_ready

from core.config import get_settings
from core.queue import make_celery
from core.storage import Storage
from model.compile_cache import enable_compile_cache
from model.warm_up import warm_up

enable_compile_cache(Storage(get_settings()).compile_cache_dir)  # before anything compiles
app = make_celery(get_settings())
app.conf.include = ["worker.tasks"]


@worker_ready.connect
def _on_ready(sender=None, **_kwargs) -> None:
    from core.reconcile import Reconciler
    from worker.runner import stop_all_on_sigterm

    stop_all_on_sigterm()
    queues = {queue.name for queue in sender.app.amqp.queues.consume_from.values()} if sender else set()
    if "train" in queues:  # one reconciler per train worker: the jobs it might be handed
        Reconciler(get_settings().reconcile_seconds).start()
        warm_up(get_settings().weights_path)
