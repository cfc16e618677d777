"""`finetune up` for the benchmarks: the embedded default on a data folder with generated weights."""

from __future__ import annotations

from pathlib import Path


def start_service(work: Path, log_name: str = "up.log", **settings):
    """`finetune up` on `work/data` (generated weights with bvlc_alexnet's shapes are written there
    once): (the process, to stop; its base URL; the data folder)."""
    from model.weights import WEIGHTS_FILE_NAME, write_synthetic_weights
    from tests.utils.processes import start_embedded

    data = work / "data"
    if not (data / WEIGHTS_FILE_NAME).is_file():
        data.mkdir(parents=True, exist_ok=True)
        write_synthetic_weights(data / WEIGHTS_FILE_NAME)
    up, url = start_embedded(data, work / log_name, **settings)
    _wait_for_workers(work / log_name)
    return up, url, data


def _wait_for_workers(log: Path, timeout: float = 180.0) -> None:
    """Until both workers have said "ready." (a train worker loads TensorFlow first): the
    benchmarks time a running service, not one still starting."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        ready = [line for line in lines if line.endswith(" ready.")]
        if all(any(f"{queue}@" in line for line in ready) for queue in ("train", "prepare")):
            return
        time.sleep(0.2)
    raise TimeoutError(f"the workers did not get ready within {timeout} s; see {log}")
