"""Per-layer time of the frozen prefix (conv1 … fc6), portable ops against the fast kernels.

Portable: what exports run (TensorFlow's LRN op, one convolution per group, the normalization as
separate ops). Fast: what training runs (`build_alexnet(fast_kernels=True)`: LRN and the input
normalization compiled by XLA, TensorFlow's grouped convolution kernel where this machine has
one, fc6's product by XLA where that is faster). Each layer is timed alone on the previous layer's
output, then the whole prefix; side by side in one run, in one precision. The two builds take
turns for `--rounds` rounds and each figure is a median: on a shared 2-core host the speed can
drift by half within one run (the same conv3 layer timed 145 and 216 ms when one build ran after
the other).

    python -m bench.layer_speed --precision bfloat16 --batch 64
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="calls per timing")
    parser.add_argument("--rounds", type=int, default=3, help="turns of the two builds")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from model.network.alexnet import build_alexnet, split_layers
    from model.network.layers import native_grouped_convolution
    from model.network.precision import dtype_policy, resolve

    precision = resolve(args.precision)
    images = tf.constant(np.random.default_rng(0).integers(0, 256, (args.batch, 227, 227, 3), dtype=np.uint8))

    def seconds(function, value) -> float:
        function(value)
        function(value)  # traced, compiled and warm
        started = time.perf_counter()
        for _ in range(args.repeats):
            out = function(value)
        np.asarray(out)
        return (time.perf_counter() - started) / args.repeats

    functions = {}  # build → ({layer: (function, its input)}, whole prefix)
    for fast in (False, True):
        model = build_alexnet(2, dtype_policy=dtype_policy(precision), fast_kernels=fast, initialize=())
        prefix_layers, _ = split_layers(model, "fc7")
        value, per_layer = images, {}
        for layer in prefix_layers:
            function = tf.function(lambda x, layer=layer: layer(x, training=False))
            per_layer[layer.name] = (function, value)
            value = function(value)
        prefix = keras.Model(model.input, model.get_layer("fc6").output)
        functions[fast] = (per_layer, tf.function(lambda x, prefix=prefix: prefix(x, training=False)))
    samples = {fast: ({name: [] for name in functions[fast][0]}, []) for fast in (False, True)}
    for _ in range(args.rounds):
        for fast in (False, True):
            per_layer, whole = functions[fast]
            for name, (function, value) in per_layer.items():
                samples[fast][0][name].append(seconds(function, value))
            samples[fast][1].append(seconds(whole, images))
    timings = {
        fast: ({name: statistics.median(s) for name, s in per_layer.items()}, statistics.median(whole))
        for fast, (per_layer, whole) in samples.items()
    }
    print(
        f"frozen prefix, {precision}, batch {args.batch}, TensorFlow {tf.__version__}, "
        f"{os.cpu_count()} cores; TensorFlow's grouped kernel here: {native_grouped_convolution()}"
    )
    print(f"{'layer':10s} {'portable ms':>12s} {'fast ms':>9s} {'ratio':>7s}")
    for name, portable_s in timings[False][0].items():
        fast_s = timings[True][0][name]
        print(f"{name:10s} {portable_s * 1e3:12.1f} {fast_s * 1e3:9.1f} {portable_s / fast_s:6.2f}x")
    (_, portable_whole), (_, fast_whole) = timings[False], timings[True]
    print(
        f"{'prefix':10s} {portable_whole * 1e3:12.1f} {fast_whole * 1e3:9.1f} "
        f"{portable_whole / fast_whole:6.2f}x   ({args.batch / portable_whole:.0f} → "
        f"{args.batch / fast_whole:.0f} img/s)"
    )


if __name__ == "__main__":
    main()
