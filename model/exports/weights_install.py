"""Install the pretrained weights: download or take a local bvlc_alexnet.npy, verify, convert.

The original file is a pickle, and unpickling runs whatever code the file names. So before it is
read, its size (and SHA-256, when one is pinned) must match the published file unless the user
says `--trust`; and even then it is read by an unpickler that only rebuilds numpy arrays. What is
kept is the pickle-free `.npz` that `read_weights` loads memory-mapped.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

from model.exports.weights import Weights, WeightsError, check_shapes, save_weights
from model.network.layout import WEIGHT_LAYERS

WEIGHTS_URL = "https://www.cs.toronto.edu/~guerzhoy/tf_alexnet/bvlc_alexnet.npy"
WEIGHTS_SIZE_BYTES = 243_861_814
# The SHA-256 of the published file. No copy could be fetched where this was written, so it is
# not pinned in the code; pin it with FINETUNE_WEIGHTS_SHA256 (or --sha256) once you have one.
WEIGHTS_SHA256: str | None = None

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays, lists and dicts; refuses every other global (no code runs)."""

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise WeightsError(f"the file asks to run {module}.{name}; only numpy arrays are accepted")


def read_pickled_weights(path: str | os.PathLike) -> Weights:
    """Read the original `.npy` layouts (`name → [W, b]` or `name → {weights, biases}`) safely."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            header = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }
            shape, _, dtype = header[version](fh)
            if not dtype.hasobject or shape != ():
                raise WeightsError(f"{path} holds a plain array, not a dict of layers")
            table = _ArraysOnlyUnpickler(fh, encoding="latin1").load()
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(f"cannot read weights file {path}: {exc}") from exc
    if isinstance(table, np.ndarray) and table.dtype == object and table.shape == ():
        table = table.item()
    if not isinstance(table, dict):
        raise WeightsError(f"{path} does not hold a dict of layers (got {type(table).__name__})")
    weights: Weights = {}
    for name, value in table.items():
        name = name.decode() if isinstance(name, bytes) else str(name)
        if name not in WEIGHT_LAYERS:
            raise WeightsError(f"{path}: unknown layer {name!r}; AlexNet has {', '.join(WEIGHT_LAYERS)}")
        if isinstance(value, dict):
            value = {k.decode() if isinstance(k, bytes) else k: v for k, v in value.items()}
            kernel, bias = value.get("weights"), value.get("biases")
        elif isinstance(value, list | tuple) and len(value) == 2:
            kernel, bias = value
        else:
            raise WeightsError(f"{path}: layer {name!r} must be [weights, biases] or {{'weights', 'biases'}}")
        weights[name] = (np.asarray(kernel, dtype=np.float32), np.asarray(bias, dtype=np.float32))
    return weights


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def expected_sha256() -> str | None:
    return os.environ.get("FINETUNE_WEIGHTS_SHA256") or WEIGHTS_SHA256


def verify_original(path: Path, sha256: str | None, trust: bool) -> str:
    """Check that `path` is the published bvlc_alexnet.npy before anything unpickles it."""
    digest = file_sha256(path)
    if trust:
        return digest
    size = path.stat().st_size
    if size != WEIGHTS_SIZE_BYTES:
        raise WeightsError(
            f"{path} is {size} bytes, the published bvlc_alexnet.npy is {WEIGHTS_SIZE_BYTES}: not the "
            "expected file. If you trust it (your own conversion, say), install it with --trust"
        )
    if sha256 and digest != sha256.lower():
        raise WeightsError(
            f"{path} has SHA-256 {digest}, expected {sha256.lower()}: not the expected file "
            "(tampered or corrupt). If you trust it, install it with --trust"
        )
    return digest


def install_weights(
    source: str | os.PathLike, target: str | os.PathLike, *, sha256: str | None = None, trust: bool = False
) -> tuple[Path, str]:
    """Verify `source` (an original-layout `.npy`), convert it to the `.npz` at `target`.

    Returns the target and the source's SHA-256.
    """
    source = Path(source)
    if not source.is_file():
        raise WeightsError(f"no file at {source}")
    digest = verify_original(source, sha256 or expected_sha256(), trust)
    weights = read_pickled_weights(source)
    check_shapes(weights, weights["fc8"][0].shape[-1] if "fc8" in weights else 1000, WEIGHT_LAYERS)
    return save_weights(weights, target), digest


def download_weights(
    target: str | os.PathLike,
    url: str = WEIGHTS_URL,
    *,
    sha256: str | None = None,
    trust: bool = False,
    on_start: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[Path, str]:
    """Download the original file next to `target`, verify and convert it; the download is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".download")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            if on_start:
                on_start(int(response.headers.get("Content-Length") or WEIGHTS_SIZE_BYTES))
            while chunk := response.read(1 << 20):
                out.write(chunk)
                if progress:
                    progress(len(chunk))
        return install_weights(part, target, sha256=sha256, trust=trust)
    finally:
        part.unlink(missing_ok=True)
