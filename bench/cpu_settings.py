"""TensorFlow's process-wide CPU settings, each against TensorFlow's default, side by side in one run.

`--setting onednn`: its oneDNN kernels against its Eigen kernels (TF_ENABLE_ONEDNN_OPTS).
`--setting allocator`: its BFC allocator against its default one (TF_CPU_ALLOCATOR_USE_BFC).
TensorFlow reads both once, so each side runs in fresh processes, alternating (default, chosen,
default, ...), and each figure is the median of its rounds. The workloads are what a job spends
its time on, in float32 with the fast kernels training uses: the frozen prefix's features (conv1 …
fc6) of `--images` images and half as many flips through the feature cache, 128 per call, twice
(the first also traces), with the page faults of the second (memory that came fresh from the
kernel); one fc7+fc8 step (forward, gradients, fused momentum update) at batch 128; and fc7's
forward product alone, against the same product with the kernel stored transposed.
`model.network.cpu_kernels` chooses oneDNN on every x86 CPU (TensorFlow alone does so only on CPUs with
AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX) and the BFC allocator everywhere.

    python -m bench.cpu_settings --setting allocator --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

from model.network.precision import cpu_flags

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {  # name: (variable, TensorFlow's default, the engine's choice, what each side is called)
    "onednn": ("TF_ENABLE_ONEDNN_OPTS", "0", "1", ("Eigen (oneDNN off)", "oneDNN")),
    "allocator": ("TF_CPU_ALLOCATOR_USE_BFC", "false", "true", ("default allocator", "BFC allocator")),
}
WORKLOAD = """
import resource, sys, tempfile, time, numpy as np, tensorflow as tf, keras
from tensorflow.python.util import _pywrap_util_port
from model.network.alexnet import build_alexnet, split_layers
from model.training.features import FeatureCache
from model.training.optimizers import FusedMomentumSGD

def per_call(function, repeats):
    function(); function()
    started = time.perf_counter()
    for _ in range(repeats):
        out = function()
    np.asarray(out)
    return (time.perf_counter() - started) / repeats

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

count = int(sys.argv[1])
model = build_alexnet(10, fast_kernels=True, initialize=())
_, head_layers = split_layers(model, "fc7")
prefix = keras.Model(model.input, model.get_layer("fc6").output)
images = np.random.default_rng(0).integers(0, 256, (count, 227, 227, 3), dtype=np.uint8)
passes = count + count // 2

def cold_features():  # a fresh cache entry each time: what a job on new data computes
    with tempfile.TemporaryDirectory() as folder:
        FeatureCache(folder).features("bench", images, prefix, np.arange(count // 2))

started = time.perf_counter()
cold_features()
first_s = time.perf_counter() - started
before, started = faults(), time.perf_counter()
cold_features()
second_s = time.perf_counter() - started
faults_per_image = (faults() - before) / passes
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
print(_pywrap_util_port.IsMklEnabled(), passes / first_s, passes / second_s, faults_per_image,
      per_call(step, 20) * 1e3, *(per_call(product, 20) * 1e3 for product in products))
"""


def run(variable: str, value: str, images: int) -> tuple[bool, list[float]]:
    env = {**os.environ, variable: value, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", WORKLOAD, str(images)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    onednn, *figures = done.stdout.split()
    return onednn == "True", [float(f) for f in figures]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="onednn")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--images", type=int, default=256, help="the feature cache's images")
    args = parser.parse_args()
    variable, default, chosen, names = SETTINGS[args.setting]
    results: dict[str, list[list[float]]] = {default: [], chosen: []}
    for _ in range(args.rounds):
        for value in (default, chosen):
            onednn, figures = run(variable, value, args.images)
            if args.setting == "onednn":
                assert onednn == (value == chosen), f"{variable}={value} did not take"
            results[value].append(figures)
    shown = sorted(f for f in cpu_flags() if f.startswith(("avx512", "amx", "avx_vnni", "avx2")))
    print(f"{os.cpu_count()} cores; CPU flags: {' '.join(shown) or 'unknown'}; {args.rounds} rounds")
    print(f"{variable}; features of {args.images} images and {args.images // 2} flips, twice")
    medians = {}
    for value, name in zip((default, chosen), names):
        medians[value] = [statistics.median(row[i] for row in results[value]) for i in range(6)]
        cold, warm, faults, step_ms, plain_ms, transposed_ms = medians[value]
        print(f"{name:20s} features {cold:6.1f} img/s, again {warm:6.1f} img/s "
              f"({faults:,.0f} page faults an image); fc7+fc8 step {step_ms:6.1f} ms")  # fmt: skip
        print(f"{'':20s} 128x4096 by 4096x4096 {plain_ms:5.1f} ms, by its transpose {transposed_ms:5.1f} ms")
    ours, theirs = medians[chosen], medians[default]
    print(f"{names[1]} / {names[0]}: features {ours[0] / theirs[0]:.2f}x as fast, again "
          f"{ours[1] / theirs[1]:.2f}x, step {theirs[3] / ours[3]:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
