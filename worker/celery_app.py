"""The worker's Celery app (`celery -A worker.celery_app worker`, or `finetune worker`)."""

import gc

from celery.signals import worker_ready

from core.config import get_settings
from core.queue import make_celery
from core.storage import Storage
from model.compile_cache import enable_compile_cache

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
        warm_up()


def warm_up() -> None:
    """Load TensorFlow and the engine, probe the hardware, and keep the installed weights as the
    jobs' start values, before the first job rather than inside it: ~4 s of a small job's time
    from POST /jobs to its first step, and the weights about 1.5 s of the first job's (0.7 s here;
    medians of three fresh processes on a 2-core AVX2 EPYC).
    What is loaded by then lives as long as the process: frozen out of the garbage collector,
    each job's collection of the previous one (`model.training`) takes ~5 ms instead of ~0.1 s."""
    from model.assembly import keep_start_weights
    from model.layers import native_grouped_convolution
    from model.precision import resolve

    native_grouped_convolution(resolve("auto"))  # the compute dtype `precision: auto` picks here
    keep_start_weights(get_settings().weights_path)  # not installed yet: the first job reads them
    gc.collect()
    gc.freeze()
