"""TensorFlow's oneDNN kernels against its Eigen kernels, side by side in one run.

TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, so each side runs in fresh processes, alternating
(off, on, off, on, ...), and each figure is the median of its rounds. The workloads are what a job
spends its time on, in float32 with the fast kernels training uses: the frozen prefix (conv1 …
fc6) at batch 64, and one fc7+fc8 step (forward, gradients, fused momentum update) at batch 128;
and fc7's forward product alone, against the same product with the kernel stored transposed.
`model.cpu_kernels` turns oneDNN on for every x86 CPU; TensorFlow alone does so only on CPUs with
AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX.

    python -m bench.onednn --rounds 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

from model.precision import cpu_flags

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = """
import time, numpy as np, tensorflow as tf, keras
from tensorflow.python.util import _pywrap_util_port
from model.alexnet import build_alexnet, split_layers
from model.optimizers import FusedMomentumSGD

def per_call(function, repeats):
    function(); function()
    started = time.perf_counter()
    for _ in range(repeats):
        out = function()
    np.asarray(out)
    return (time.perf_counter() - started) / repeats

model = build_alexnet(10, fast_kernels=True, initialize=())
_, head_layers = split_layers(model, "fc7")
prefix = keras.Model(model.input, model.get_layer("fc6").output)
images = tf.constant(np.random.default_rng(0).integers(0, 256, (64, 227, 227, 3), dtype=np.uint8))
forward = tf.function(lambda: prefix(images, training=False))
features = tf.constant(np.random.default_rng(1).random((128, 4096), dtype=np.float32))
labels = tf.constant(np.arange(128) % 10)
head = keras.Sequential(head_layers)
head.build((None, 4096))
optimizer = FusedMomentumSGD(0.001, momentum=0.9)
optimizer.build(head.trainable_variables)

@tf.function
def step():
    with tf.GradientTape() as tape:
        logits = head(features, training=True)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    optimizer.apply_gradients(zip(tape.gradient(loss, head.trainable_variables), head.trainable_variables))
    return loss

kernel = tf.constant(np.random.default_rng(2).random((4096, 4096), dtype=np.float32))
products = [tf.function(lambda b=b: tf.matmul(features, kernel, transpose_b=b)) for b in (False, True)]
print(_pywrap_util_port.IsMklEnabled(), 64 / per_call(forward, 5), per_call(step, 20) * 1e3,
      *(per_call(product, 20) * 1e3 for product in products))
"""


def run(onednn: str) -> tuple[bool, float, float, float, float]:
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", WORKLOAD], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    enabled, *figures = done.stdout.split()
    return (enabled == "True", *map(float, figures))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, list[tuple[bool, float, float, float, float]]] = {"0": [], "1": []}
    for _ in range(args.rounds):
        for onednn in ("0", "1"):
            results[onednn].append(run(onednn))
    shown = sorted(f for f in cpu_flags() if f.startswith(("avx512", "amx", "avx_vnni", "avx2")))
    print(f"{os.cpu_count()} cores; CPU flags: {' '.join(shown) or 'unknown'}; {args.rounds} rounds")
    medians = {}
    for onednn, rows in results.items():
        assert all(row[0] == (onednn == "1") for row in rows), "the switch did not take"
        medians[onednn] = [statistics.median(row[i] for row in rows) for i in range(1, 5)]
        name = "oneDNN" if onednn == "1" else "Eigen (oneDNN off)"
        rate, step_ms, plain_ms, transposed_ms = medians[onednn]
        print(f"{name:20s} frozen prefix {rate:6.1f} img/s   fc7+fc8 step {step_ms:6.1f} ms")
        print(f"{'':20s} 128x4096 by 4096x4096 {plain_ms:5.1f} ms, by its transpose {transposed_ms:5.1f} ms")
    print(f"oneDNN / Eigen: prefix {medians['1'][0] / medians['0'][0]:.2f}x as fast, "
          f"step {medians['0'][1] / medians['1'][1]:.2f}x as fast")  # fmt: skip


if __name__ == "__main__":
    main()
