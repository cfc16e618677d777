"""The rest of the API under a /predict flood, against the same API idle, in one run.

`finetune up` on the embedded default; 64 clients each post 16 images to `/predict model=imagenet`
`--rounds` times, while one more client asks `/healthz` and `GET /jobs` in turn. Prints the
latency of those two idle and under the flood, how the flood was answered (200, or 503 with
Retry-After past FINETUNE_PREDICT_QUEUE_SIZE), and the API process's peak resident memory.

    python -m bench.predict_flood --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.embedded import start_service  # noqa: E402
from bench.scratch import scratch_folder  # noqa: E402


def latencies(url: str, until: threading.Event | None, count: int = 60) -> list[float]:
    """Seconds per answer of /healthz and GET /jobs in turn: `count` of them, or until `until` is set."""
    import httpx

    seen = []
    with httpx.Client(base_url=url, timeout=120) as client:
        while (until is None and len(seen) < count) or (until is not None and not until.is_set()):
            for path in ("/healthz", "/jobs"):
                started = time.perf_counter()
                assert client.get(path).status_code == 200
                seen.append(time.perf_counter() - started)
    return seen


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import httpx

    from testkit.images import make_image

    up, url, _ = start_service(scratch_folder("finetune-flood-bench-"))
    files = [("image", (f"{i}.jpg", make_image(i % 2, i))) for i in range(args.images)]
    try:
        warm = httpx.post(f"{url}/predict", files=files, data={"model": "imagenet"}, timeout=300)
        assert warm.status_code == 200, warm.text  # the network loaded, as on a service in use
        idle = latencies(url, None)

        def flood(_):
            answers = []
            with httpx.Client(base_url=url, timeout=300) as client:
                for _ in range(args.rounds):
                    answers.append(
                        client.post("/predict", files=files, data={"model": "imagenet"}).status_code
                    )
            return answers

        done = threading.Event()
        with ThreadPoolExecutor(args.clients + 1) as pool:
            watcher = pool.submit(latencies, url, done)
            started = time.perf_counter()
            answers = [status for client in pool.map(flood, range(args.clients)) for status in client]
            elapsed = time.perf_counter() - started
            done.set()
            loaded = watcher.result()
        memory = peak_memory_mb(up.process.pid)
    finally:
        up.stop()
    print(
        f"{args.clients} clients x {args.images} images x {args.rounds} rounds in {elapsed:.1f} s: "
        f"{answers.count(200)} answered 200, {answers.count(503)} 503, "
        f"{len(answers) - answers.count(200) - answers.count(503)} other"
    )
    for name, seen in (("idle", idle), ("flood", loaded)):
        print(
            f"/healthz and GET /jobs, {name}: {len(seen)} answers, "
            f"median {statistics.median(seen) * 1000:.1f} ms, max {max(seen) * 1000:.1f} ms"
        )
    print(f"max under the flood / max idle: {max(loaded) / max(idle):.1f}x")
    print(f"API process peak resident memory (VmHWM): {memory:.0f} MB")


if __name__ == "__main__":
    main()
