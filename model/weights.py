"""Pretrained AlexNet weights: the converted Caffe file `bvlc_alexnet.npy`, and how to get it.

Two layouts are accepted, both pickled dicts saved with `np.save`: `name → [weights, biases]` (the
widely used file) and caffe-to-tensorflow's `name → {"weights": ..., "biases": ...}`. Exports of a
finetune store their weights in the first layout, so continuing from one uses the same loader.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

import numpy as np

from model.layout import WEIGHT_LAYERS

# Shapes in bvlc_alexnet.npy; fc8 has 1000 ImageNet classes there and `num_classes` elsewhere.
PRETRAINED_SHAPES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "conv1": ((11, 11, 3, 96), (96,)),
    "conv2": ((5, 5, 48, 256), (256,)),
    "conv3": ((3, 3, 256, 384), (384,)),
    "conv4": ((3, 3, 192, 384), (384,)),
    "conv5": ((3, 3, 192, 256), (256,)),
    "fc6": ((9216, 4096), (4096,)),
    "fc7": ((4096, 4096), (4096,)),
    "fc8": ((4096, 1000), (1000,)),
}
WEIGHTS_URL = "http://www.cs.toronto.edu/~guerzhoy/tf_alexnet/bvlc_alexnet.npy"
WEIGHTS_SIZE_BYTES = 243_861_814

Weights = dict[str, tuple[np.ndarray, np.ndarray]]


class WeightsError(ValueError):
    """A weights file that is missing, unreadable or does not fit the network."""


def read_weights(path: str | os.PathLike) -> Weights:
    """Read and check a weights file; every problem names the layer and the shapes."""
    path = Path(path)
    if (path / "saved_model").is_dir():
        return _read_export(path)
    if not path.is_file():
        raise WeightsError(
            f"weights file not found: {path}. Download it with `finetune download-weights --to {path}`"
        )
    try:
        raw = np.load(path, allow_pickle=True, encoding="latin1")
        table = raw.item() if isinstance(raw, np.ndarray) and raw.dtype == object else raw
    except Exception as exc:
        raise WeightsError(f"cannot read weights file {path}: {exc}") from exc
    if not isinstance(table, dict):
        raise WeightsError(f"{path} does not hold a dict of layers (got {type(table).__name__})")
    weights: Weights = {}
    for name, value in table.items():
        name = name.decode() if isinstance(name, bytes) else str(name)
        if name not in WEIGHT_LAYERS:
            raise WeightsError(f"{path}: unknown layer {name!r}; AlexNet has {', '.join(WEIGHT_LAYERS)}")
        if isinstance(value, dict):
            kernel, bias = value.get("weights"), value.get("biases")
        elif isinstance(value, (list, tuple)) and len(value) == 2:
            kernel, bias = value
        else:
            raise WeightsError(f"{path}: layer {name!r} must be [weights, biases] or {{'weights', 'biases'}}")
        weights[name] = (np.asarray(kernel, dtype=np.float32), np.asarray(bias, dtype=np.float32))
    return weights


def _read_export(path: Path) -> Weights:
    from model.export import read_export_weights

    try:
        return {
            name: (np.asarray(k, np.float32), np.asarray(b, np.float32))
            for name, (k, b) in read_export_weights(path).items()
        }
    except Exception as exc:
        raise WeightsError(f"cannot read the weights of export {path}: {exc}") from exc


def check_shapes(weights: Weights, num_classes: int, layers: list[str] | tuple[str, ...]) -> None:
    """Raise `WeightsError` unless each of `layers` is present with the network's shapes."""
    for name in layers:
        if name not in weights:
            raise WeightsError(f"weights have no layer {name!r} (they have {', '.join(sorted(weights))})")
        want_kernel, want_bias = PRETRAINED_SHAPES[name]
        if name == "fc8":
            want_kernel, want_bias = (4096, num_classes), (num_classes,)
        kernel, bias = weights[name]
        if kernel.shape != want_kernel or bias.shape != want_bias:
            raise WeightsError(
                f"layer {name!r}: weights have shapes {kernel.shape} and {bias.shape}, "
                f"the network needs {want_kernel} and {want_bias}"
            )


def apply_weights(model, weights: Weights, layers: list[str] | tuple[str, ...]) -> None:
    """Copy `layers` from `weights` into the model (after `check_shapes`)."""
    check_shapes(weights, model.get_layer("fc8").units, layers)
    for name in layers:
        model.get_layer(name).set_weights(list(weights[name]))


def save_weights(weights: Weights, path: str | os.PathLike) -> None:
    """Write in the `name → [weights, biases]` layout, atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, {name: [k, b] for name, (k, b) in weights.items()}, allow_pickle=True)
    os.replace(tmp, path)


def write_synthetic_weights(path: str | os.PathLike, seed: int = 0, num_classes: int = 1000) -> Path:
    """A file with the layout and shapes of bvlc_alexnet.npy, filled with He-scaled noise.

    For tests and benchmarks where the real 233 MB file is not available; it trains and predicts
    through exactly the same code paths.
    """
    rng = np.random.default_rng(seed)
    weights: Weights = {}
    for name, (kernel_shape, bias_shape) in PRETRAINED_SHAPES.items():
        if name == "fc8":
            kernel_shape, bias_shape = (4096, num_classes), (num_classes,)
        fan_in = int(np.prod(kernel_shape[:-1]))
        scale = np.sqrt(2.0 / fan_in) / (64.0 if name == "conv1" else 1.0)  # conv1 sees pixels of ±128
        kernel = rng.standard_normal(kernel_shape, dtype=np.float32) * np.float32(scale)
        weights[name] = (kernel, np.full(bias_shape, 0.01, dtype=np.float32))
    save_weights(weights, path)
    return Path(path)


def fingerprint(arrays: list[np.ndarray]) -> str:
    """A content hash of weights, so caches keyed by it never mix two different networks."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def download_weights(to: str | os.PathLike, url: str = WEIGHTS_URL, progress=None) -> Path:
    """Download bvlc_alexnet.npy to `to`, then check every layer's shape before keeping it."""
    to = Path(to)
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp = to.with_name(to.name + ".part")
    with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
        total = int(response.headers.get("Content-Length") or WEIGHTS_SIZE_BYTES)
        done = 0
        while chunk := response.read(1 << 20):
            out.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    try:
        check_shapes(read_weights(tmp), 1000, WEIGHT_LAYERS)
    except WeightsError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, to)
    return to
