"""What a process that runs jobs does before its first one, so that the job does not pay for it."""

from __future__ import annotations

import gc
from pathlib import Path


def warm_up(weights_path: str | Path | None) -> None:
    """Load TensorFlow and the engine, probe the hardware, and keep the installed weights as the
    jobs' start values, before the first job rather than inside it: ~4 s of a small job's time
    from POST /jobs to its first step, and the weights about 1.5 s of the first job's for 0.7 s of
    warm-up (medians of three fresh processes on a 2-core AVX2 EPYC). What is loaded by then lives
    as long as the process: frozen out of the garbage collector, each job's collection of the
    previous one (`model.training.loop`) takes ~5 ms instead of ~0.1 s."""
    from model.network.layers import native_grouped_convolution
    from model.network.precision import resolve
    from model.training.assembly import keep_start_weights

    native_grouped_convolution(resolve("auto"))  # the compute dtype `precision: auto` picks here
    if weights_path is not None:
        keep_start_weights(weights_path)  # not installed yet: the first job reads them
    gc.collect()
    gc.freeze()
