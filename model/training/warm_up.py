"""What a process that runs jobs does before its first one, so that the job does not pay for it."""

from __future__ import annotations

import gc
from pathlib import Path


def warm_up(weights_path: str | Path | None) -> None:
    """Load TensorFlow and the engine, probe the hardware, and keep the installed weights as the
    jobs' start values, before the first job rather than inside it, where they were most of a small
    job's time from POST /jobs to its first step. What is loaded by then lives as long as the
    process: frozen out of the garbage collector, so each job's collection of the previous one
    (`model.training.loop`) does not walk it."""
    from model.network.layers import native_grouped_convolution
    from model.network.precision import resolve
    from model.training.assembly import keep_start_weights

    native_grouped_convolution(resolve("auto"))  # the compute dtype `precision: auto` picks here
    if weights_path is not None:
        keep_start_weights(weights_path)  # not installed yet: the first job reads them
    gc.collect()
    gc.freeze()
