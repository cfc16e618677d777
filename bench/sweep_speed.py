"""A sweep against the same trials run as separate jobs, side by side in one run of `finetune up`.

(a) 8 jobs one after another, each from a cold feature cache (the cache folder is removed before
    each, as when every try is its own script or its own DIGITS job);
(b) one `POST /sweeps` with the same 8 option sets, from a cold cache: the frozen-layer features
    are computed once and every trial trains on them.
Both on the embedded default (SQLite, folder broker, one train worker), so the trials of (b) run
one after another too: the ratio is what sharing the features saves, before any parallelism
across train workers. Prints seconds from the first POST to the last trial's end, and b/a.

    python -m bench.sweep_speed --per-class 150 --epochs 3
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.embedded import start_service  # noqa: E402
from bench.scratch import scratch_folder

GRID = {"learning_rate": [0.01, 0.001], "dropout_rate": [0.3, 0.5], "weight_decay": [0.0, 0.0005]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-class", type=int, default=150, help="Images per class (two classes).")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import httpx

    from testkit.service import upload_and_wait, wait_for

    work = scratch_folder("finetune-sweep-bench-")
    base = {"num_epochs": args.epochs, "batch_size": args.batch_size}
    trials = [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]
    up, url, data = start_service(work)
    try:
        http = httpx.Client(base_url=url, timeout=120)
        dataset = upload_and_wait(http, work, per_class=args.per_class)
        train_images = dataset["splits"]["train"]

        def finished(job_id: str) -> bool:
            status = http.get(f"/jobs/{job_id}").json()["status"]
            assert status in ("queued", "running", "succeeded"), status
            return status == "succeeded"

        started = time.perf_counter()
        for params in trials:
            shutil.rmtree(data / "features", ignore_errors=True)  # cold, as a separate run would be
            job = http.post("/jobs", json={"dataset_id": dataset["id"], **base, **params}).json()
            wait_for(lambda job=job: finished(job["id"]), timeout=3600, interval=0.2)
        separate = time.perf_counter() - started

        shutil.rmtree(data / "features", ignore_errors=True)
        started = time.perf_counter()
        grid = {k: list(v) for k, v in GRID.items()}
        sweep = http.post("/sweeps", json={"dataset_id": dataset["id"], "base": base, "grid": grid}).json()
        wait_for(
            lambda: http.get(f"/sweeps/{sweep['id']}").json()["status"] != "running",
            timeout=3600,
            interval=0.2,
        )
        swept = time.perf_counter() - started
        result = http.get(f"/sweeps/{sweep['id']}").json()
    finally:
        up.stop()

    print(f"{len(trials)} trials of fc7+fc8, {args.epochs} epochs, batch {args.batch_size}, flips, "
          f"{train_images} training images; CPU: {os.cpu_count()} cores; one train worker")  # fmt: skip
    print(f"(a) {len(trials)} separate jobs, cold cache each: {separate:7.1f} s")
    print(f"(b) one sweep, cold cache:            {swept:7.1f} s   status {result['status']}")
    print(f"b/a = {swept / separate:.2f}")


if __name__ == "__main__":
    main()
