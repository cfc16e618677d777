"""`finetune up` for the benchmarks: the embedded default on a data folder with generated weights."""

from __future__ import annotations

import re
from pathlib import Path


def start_service(work: Path, log_name: str = "up.log", **settings):
    """`finetune up` on `work/data` (generated weights with bvlc_alexnet's shapes are written there
    once): (the process, to stop; its base URL; the data folder)."""
    from model.exports.weights import WEIGHTS_FILE_NAME, write_synthetic_weights
    from testkit.processes import start_embedded, wait_for_log

    data = work / "data"
    if not (data / WEIGHTS_FILE_NAME).is_file():
        data.mkdir(parents=True, exist_ok=True)
        write_synthetic_weights(data / WEIGHTS_FILE_NAME)
    up, url = start_embedded(data, work / log_name, **settings)
    # both workers said "ready." (a train worker loads TensorFlow first): the benchmarks time a
    # running service, not one still starting
    for queue in ("train", "prepare"):
        wait_for_log(up, re.compile(rf"{queue}@.* ready\.$", re.MULTILINE), timeout=180)
    return up, url, data
