"""AlexNet weights by layer name: read, check, apply, save.

The installed pretrained weights and every weights file this project writes are `.npz` archives
of plain arrays (`conv1/kernel`, `conv1/bias`, …): no pickle, read memory-mapped. The original
pickled `bvlc_alexnet.npy` is only ever read once, by `finetune download-weights`, through a
restricted unpickler (see `model.exports.weights_install`). Exports are read from their SavedModel.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model.exports.export_writer import WEIGHT_KEY
from model.network.layout import WEIGHT_LAYERS

# Shapes in bvlc_alexnet; fc8 has 1000 ImageNet classes there and `num_classes` elsewhere.
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
WEIGHTS_FILE_NAME = "bvlc_alexnet.npz"
FINGERPRINT_KEY = "__fingerprint__"

Weights = dict[str, tuple[np.ndarray, np.ndarray]]
_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


class WeightsError(ValueError):
    """A weights file that is missing, unreadable or does not fit the network."""


def default_weights_path() -> Path:
    """Where the pretrained weights live: FINETUNE_WEIGHTS_PATH, else FINETUNE_DATA_DIR (or ./data)."""
    if os.environ.get("FINETUNE_WEIGHTS_PATH"):
        return Path(os.environ["FINETUNE_WEIGHTS_PATH"]).expanduser()
    return Path(os.environ.get("FINETUNE_DATA_DIR") or "data").expanduser() / WEIGHTS_FILE_NAME


def read_weights(path: str | os.PathLike) -> Weights:
    """Read and check an export folder or an `.npz` weights file; every problem names the layer."""
    path = Path(path)
    if (path / "saved_model").is_dir():
        try:
            return read_export_weights(path)
        except Exception as exc:
            raise WeightsError(f"cannot read the weights of export {path}: {exc}") from exc
    if path.is_dir():
        raise WeightsError(f"{path} is a folder but not a finetune export (it has no saved_model/)")
    if not path.is_file():
        raise WeightsError(f"no weights file or export at {path}")
    arrays = _load_npz(path)
    weights: Weights = {}
    for key in arrays:
        name, _, part = key.partition("/")
        if key == FINGERPRINT_KEY:
            continue
        if name not in WEIGHT_LAYERS or part not in ("kernel", "bias"):
            raise WeightsError(f"{path}: unknown entry {key!r}; expected <layer>/kernel and <layer>/bias")
    for name in WEIGHT_LAYERS:
        if f"{name}/kernel" in arrays:
            if f"{name}/bias" not in arrays:
                raise WeightsError(f"{path}: layer {name!r} has a kernel but no bias")
            weights[name] = (arrays[f"{name}/kernel"], arrays[f"{name}/bias"])
    return weights


def check_pretrained_file(path: str | os.PathLike) -> str | None:
    """Check an installed pretrained weights file without reading its values (the archive's
    directory and each array's header): every layer with bvlc_alexnet's shapes. Returns the
    fingerprint stored with it (None for a file written without one); raises `WeightsError`."""
    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"{path} is a folder, not a weights file")
    weights = read_weights(path)
    check_shapes(weights, PRETRAINED_SHAPES["fc8"][1][0], WEIGHT_LAYERS)
    return stored_fingerprint(path)


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an uncompressed `.npz`, memory-mapped; object arrays (pickles) are refused."""
    if not zipfile.is_zipfile(path):
        hint = ""
        if path.read_bytes()[:6] == b"\x93NUMPY":
            hint = (
                ": it is a pickled .npy (the original bvlc_alexnet.npy layout); convert it once with "
                f"`finetune download-weights --from {path}`"
            )
        raise WeightsError(f"cannot read weights file {path}: not an .npz archive{hint}")
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive, open(path, "rb") as fh:
            for info in archive.infolist():
                key = info.filename.removesuffix(".npy")
                if info.compress_type != zipfile.ZIP_STORED:
                    with archive.open(info) as member:
                        arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
                    continue
                fh.seek(info.header_offset)
                local = fh.read(30)
                name_len, extra_len = struct.unpack("<HH", local[26:30])
                fh.seek(info.header_offset + 30 + name_len + extra_len)
                read_header = _NPY_HEADER_READERS.get(np.lib.format.read_magic(fh))
                if read_header is None:
                    raise WeightsError(f"{path}: entry {key!r} has an unknown .npy version")
                shape, fortran, dtype = read_header(fh)
                if dtype.hasobject:
                    raise WeightsError(f"{path}: entry {key!r} holds Python objects; only plain arrays load")
                if not shape or 0 in shape:
                    arrays[key] = np.lib.format.read_array(archive.open(info), allow_pickle=False)
                    continue
                arrays[key] = np.memmap(
                    path, dtype=dtype, mode="r", offset=fh.tell(), shape=shape, order="F" if fortran else "C"
                )
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(f"cannot read weights file {path}: {exc}") from exc
    return arrays


def read_export_weights(export_dir: str | os.PathLike, layers: Sequence[str] = WEIGHT_LAYERS) -> Weights:
    """The weights of an export's `layers`, by layer name, read from its SavedModel checkpoint."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(Path(export_dir) / "saved_model" / "variables" / "variables"))
    return {
        name: (
            np.asarray(reader.get_tensor(WEIGHT_KEY.format(name, 0)), np.float32),
            np.asarray(reader.get_tensor(WEIGHT_KEY.format(name, 1)), np.float32),
        )
        for name in layers
    }


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
    for name in layers:  # tensors or arrays straight into the variables: no float32 copy in numpy
        for variable, part in zip(model.get_layer(name).weights, weights[name]):
            variable.assign(part)


def save_weights(weights: Weights, path: str | os.PathLike, fingerprinted: bool = True) -> Path:
    """Write an uncompressed `.npz` of plain float32 arrays, atomically. With its fingerprint unless
    told otherwise: a file that runs start from needs it, a file that only a resume reads does not
    (hashing fc7 and fc8 would cost every checkpoint a fraction of a second)."""
    path = Path(path)
    arrays = {}
    for name, (kernel, bias) in weights.items():
        arrays[f"{name}/kernel"] = np.ascontiguousarray(kernel, np.float32)
        arrays[f"{name}/bias"] = np.ascontiguousarray(bias, np.float32)
    if fingerprinted:
        arrays[FINGERPRINT_KEY] = np.array(fingerprint(list(arrays.values())))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)
    return path


def stored_fingerprint(path: str | os.PathLike) -> str | None:
    """The content fingerprint saved with an `.npz` weights file, without reading the weights."""
    arrays = _load_npz(Path(path))
    return str(arrays[FINGERPRINT_KEY]) if FINGERPRINT_KEY in arrays else None


def synthetic_weights(seed: int = 0, num_classes: int = 1000) -> Weights:
    """Weights with bvlc_alexnet's shapes, He-scaled noise, for tests and benchmarks."""
    rng = np.random.default_rng(seed)
    weights: Weights = {}
    for name, (kernel_shape, bias_shape) in PRETRAINED_SHAPES.items():
        if name == "fc8":
            kernel_shape, bias_shape = (4096, num_classes), (num_classes,)
        fan_in = int(np.prod(kernel_shape[:-1]))
        scale = np.sqrt(2.0 / fan_in) / (64.0 if name == "conv1" else 1.0)  # conv1 sees pixels of ±128
        kernel = rng.standard_normal(kernel_shape, dtype=np.float32) * np.float32(scale)
        weights[name] = (kernel, np.full(bias_shape, 0.01, dtype=np.float32))
    return weights


def write_synthetic_weights(path: str | os.PathLike, seed: int = 0, num_classes: int = 1000) -> Path:
    """An installed-weights file with bvlc_alexnet's shapes (the real 233 MB file is not here).

    It trains and predicts through exactly the same code paths as the real one.
    """
    return save_weights(synthetic_weights(seed, num_classes), path)


def fingerprint(arrays: list[np.ndarray]) -> str:
    """A content hash of weights, so caches keyed by it never mix two different networks."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).view(np.uint8))  # its bytes, not copied
    return digest.hexdigest()
