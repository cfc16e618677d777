"""Prediction latency over HTTP against the bare in-process model call, side by side in one run.

Starts `finetune up` (embedded default) on a temporary data folder with generated weights, trains a
small job, then times: the bare call (`load_export(...).predict([image])`, decode included), one
`POST /predict` at a time, and throughput with 1 and 16 concurrent clients (after a burst of 16
that compiles each padded batch size once, as a running service has), with micro-batching
(the default) and without it (FINETUNE_PREDICT_MAX_BATCH=1), each on a fresh `finetune up`, and
the same with `precision=bfloat16` requests.

    python -m bench.predict_latency --requests 200
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
WARM_UP_SECONDS = 5.0

from bench.embedded import start_service  # noqa: E402
from bench.scratch import scratch_folder  # noqa: E402


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (its threads included, its children not)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15.0, help="Duration of each throughput run.")
    args = parser.parse_args()

    import httpx

    from model.exports.export import load_export
    from testkit.images import make_image
    from testkit.service import upload_and_wait, wait_for

    work = scratch_folder("finetune-predict-bench-")
    up, base, data = start_service(work)
    try:
        http = httpx.Client(base_url=base, timeout=120)
        dataset = upload_and_wait(http, work)
        job = http.post("/jobs", json={"dataset_id": dataset["id"], "num_epochs": 1, "batch_size": 8}).json()
        wait_for(lambda: http.get(f"/jobs/{job['id']}").json()["status"] == "succeeded", timeout=300)

        image = make_image(0, 12345, size=(320, 240))
        predictor = load_export(data / "runs" / job["id"] / "export")
        for _ in range(5):
            predictor.predict([image])
        bare = []
        for _ in range(args.requests):
            started = time.perf_counter()
            predictor.predict([image], top_k=5)
            bare.append(time.perf_counter() - started)

        def post(client: httpx.Client, precision: str = "float32") -> float:
            started = time.perf_counter()
            form = {"job_id": job["id"], "top_k": "5", "precision": precision}
            response = client.post("/predict", files={"image": ("x.jpg", image)}, data=form)
            assert response.status_code == 200, response.text
            return time.perf_counter() - started

        for _ in range(5):
            post(http)
        over_http = [post(http) for _ in range(args.requests)]

        cpu_per_request: dict[str, tuple[float, float]] = {}  # (API process, clients) ms of CPU

        def throughput(
            clients: int, precision: str = "float32", batching: str = "on", seconds: float | None = None
        ) -> tuple[float, int]:
            deadline = time.perf_counter() + (seconds or args.seconds)
            api_before, own_before = process_cpu_seconds(up.process.pid), own_cpu_seconds()

            def loop(_):
                done, errors = 0, 0
                with httpx.Client(base_url=base, timeout=120) as client:
                    while time.perf_counter() < deadline:
                        try:
                            post(client, precision)
                            done += 1
                        except Exception:  # noqa: BLE001 - counted, not hidden
                            errors += 1
                return done, errors

            started = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                results = list(pool.map(loop, range(clients)))
            done = max(sum(r[0] for r in results), 1)
            cpu_per_request[f"{precision}, batching {batching}, {clients}"] = (
                (process_cpu_seconds(up.process.pid) - api_before) / done * 1e3,
                (own_cpu_seconds() - own_before) / done * 1e3,
            )
            return sum(r[0] for r in results) / (time.perf_counter() - started), sum(r[1] for r in results)

        # every padded batch size compiles once per process (0.3-0.4 s each on 2 cores): a burst
        # before the timed runs, so that they measure a warm service, not its first compiles
        throughput(16, seconds=WARM_UP_SECONDS)
        one, one_errors = throughput(1)
        sixteen, sixteen_errors = throughput(16)
        latencies_batched = [post(http) for _ in range(args.requests)]
        for _ in range(5):
            post(http, "bfloat16")
        latencies_bf16 = [post(http, "bfloat16") for _ in range(args.requests)]
        throughput(16, "bfloat16", seconds=WARM_UP_SECONDS)
        one_bf16, _ = throughput(1, "bfloat16")
        sixteen_bf16, bf16_errors = throughput(16, "bfloat16")
    finally:
        up.stop()
    up, base, _ = start_service(work, "up-unbatched.log", predict_max_batch=1)
    try:
        http = httpx.Client(base_url=base, timeout=120)
        for _ in range(5):
            post(http)
        one_unbatched, _ = throughput(1, batching="off")
        sixteen_unbatched, unbatched_errors = throughput(16, batching="off")
    finally:
        up.stop()

    p50_bare, p99_bare = statistics.median(bare) * 1e3, percentile(bare, 99) * 1e3
    p50_http, p99_http = statistics.median(over_http) * 1e3, percentile(over_http, 99) * 1e3
    print(f"{args.requests} requests, one 320x240 JPEG each, top 5, CPU: {os.cpu_count()} cores")
    print(f"bare model call   p50 {p50_bare:7.2f} ms   p99 {p99_bare:7.2f} ms")
    print(f"POST /predict     p50 {p50_http:7.2f} ms   p99 {p99_http:7.2f} ms")
    print(f"HTTP overhead at p50: {(p50_http - p50_bare) / p50_bare:.1%} of the model call (goal < 30%)")
    print(f"micro-batching on:  1 client {one:6.1f} req/s, 16 clients {sixteen:6.1f} req/s "
          f"({sixteen / one:.2f}x; {one_errors + sixteen_errors} errors); "
          f"p50 one at a time {statistics.median(latencies_batched) * 1e3:.2f} ms")  # fmt: skip
    print(f"bfloat16 (batching on): p50 {statistics.median(latencies_bf16) * 1e3:.2f} ms, "
          f"p99 {percentile(latencies_bf16, 99) * 1e3:.2f} ms; 1 client {one_bf16:6.1f} req/s, "
          f"16 clients {sixteen_bf16:6.1f} req/s "
          f"({sixteen_bf16 / one_bf16:.2f}x; {bf16_errors} errors)")  # fmt: skip
    print("CPU per request while 16 clients ran, ms in the API process / in the benchmark's clients:")
    for name, (api, own) in cpu_per_request.items():
        if name.endswith(", 16"):
            print(f"    {name.removesuffix(', 16')}: {api:.1f} / {own:.1f}")
    print(f"micro-batching off: 1 client {one_unbatched:6.1f} req/s, "
          f"16 clients {sixteen_unbatched:6.1f} req/s "
          f"({sixteen_unbatched / one_unbatched:.2f}x; {unbatched_errors} errors)")  # fmt: skip


if __name__ == "__main__":
    main()
