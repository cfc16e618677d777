"""First use of the fast kernels in a new process: compiled by XLA, or loaded from the disk cache.

Runs the frozen prefix at a few batch sizes in fresh processes: one with an empty compile cache
(it compiles and fills it), one with the filled cache, one without any cache; each prints the
first call (trace + compile or load + run) and the second (run only) per batch size.

    python -m bench.compile_cache --precision auto
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench.scratch import scratch_folder

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SIZES = (256, 128, 64)


def child(cache: str, precision: str, weights: str) -> None:
    if cache:
        from model.network.compile_cache import enable_compile_cache

        enable_compile_cache(cache)
    import numpy as np
    import tensorflow as tf

    from model.data.preprocess import PreprocessSpec
    from model.training.assembly import assemble
    from model.training.spec import TrainSpec

    prefix = assemble(TrainSpec(precision=precision), 4, PreprocessSpec(), weights).prefix
    forward = tf.function(lambda x: prefix(x, training=False), reduce_retracing=True)
    images = np.random.default_rng(0).integers(0, 255, (max(SIZES), 227, 227, 3), dtype=np.uint8)
    first = {}
    for size in SIZES:
        timings = []
        for _ in range(2):
            started = time.perf_counter()
            forward(tf.constant(images[:size])).numpy()
            timings.append(time.perf_counter() - started)
        first[size] = timings[0] - timings[1]
    print(json.dumps(first))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], args.precision, args.child[1])

    from model.exports.weights import write_synthetic_weights

    work = scratch_folder("finetune-compile-bench-")
    weights = str(write_synthetic_weights(work / "weights.npz"))
    env = {k: v for k, v in os.environ.items() if k != "TF_XLA_FLAGS"}

    def run(cache: str) -> dict[str, float]:
        command = [sys.executable, "-m", "bench.compile_cache", "--precision", args.precision]
        out = subprocess.run([*command, "--child", cache, weights], env=env, capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        return json.loads(out.stdout.strip().splitlines()[-1])

    cache = str(work / "compiled")
    filling, cached, uncached = run(cache), run(cache), run("")
    print(f"first call minus second call, frozen prefix, precision {args.precision}, {os.cpu_count()} cores")
    print(f"{'batch':>6} {'no cache':>10} {'filling':>10} {'cached':>10}")
    for size in map(str, SIZES):
        print(f"{size:>6} {uncached[size]:9.3f}s {filling[size]:9.3f}s {cached[size]:9.3f}s")
    total = {name: sum(times.values()) for name, times in (("u", uncached), ("c", cached))}
    print(f"all sizes: {total['u']:.2f} s without the cache, {total['c']:.2f} s with it "
          f"({total['c'] / total['u']:.2f} of it)")  # fmt: skip


if __name__ == "__main__":
    main()
