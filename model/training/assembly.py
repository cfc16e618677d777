"""Assemble the network a run trains: build, load the starting weights, freeze, and cut."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from model.data.preprocess import PreprocessSpec
from model.exports.export_writer import SharedLayers
from model.exports.weights import (
    Weights,
    WeightsError,
    check_shapes,
    fingerprint,
    read_weights,
    stored_fingerprint,
)
from model.network.alexnet import WEIGHT_LAYERS, build_alexnet, chain_model, split_layers
from model.training.spec import TrainSpec


@dataclass
class Assembly:
    model: keras.Model  # the whole network, sharing its layers with prefix and head
    prefix: keras.Model | None  # frozen layers below the first trainable one and the first dropout
    head: keras.Model  # what the train step runs: the layers from the cut up
    reinit_layers: list[str]
    prefix_fingerprint: str  # identifies the prefix's weights (part of the feature cache's key)

    def frozen_layers(self) -> SharedLayers | None:
        """The prefix's weight layers, named by their fingerprint: what consecutive exports share."""
        if self.prefix is None:
            return None
        return SharedLayers(_weight_layers(self.prefix), self.prefix_fingerprint)


def configure_devices() -> None:
    """Let TensorFlow grow GPU memory as needed instead of taking all of it at start."""
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised in this process
            pass


def source_weights(spec: TrainSpec, imagenet_path: str | Path | None, start_path=None) -> Weights | None:
    """The weights a run starts from: None for `random`, else the file or export named by `weights`."""
    path = source_path(spec, imagenet_path, start_path)
    return None if path is None else read_weights(path)


def source_path(spec: TrainSpec, imagenet_path: str | Path | None, start_path=None) -> Path | None:
    """Where the starting weights are read from (checked to exist for `imagenet`). `start_path`,
    where given, is where this host finds the weights that `weights` names (a service's `job:<id>`):
    the spec keeps the name, so a run's records hold no path of the host that started it."""
    if spec.weights == "random":
        return None
    if start_path is not None:
        return Path(start_path)
    if spec.weights == "imagenet":
        if imagenet_path is None:
            raise WeightsError(
                "weights='imagenet' needs the installed weights (see `finetune download-weights`)"
            )
        if not Path(imagenet_path).exists():
            raise WeightsError(
                f"the pretrained weights are not installed at {imagenet_path}: run "
                f"`finetune download-weights --to {imagenet_path}` (or `--from` a copy you have), "
                "or train with weights 'random'"
            )
        return Path(imagenet_path)
    return Path(spec.weights)  # an export folder or a weights file


def source_classes(source: Weights | None) -> int | None:
    return None if source is None or "fc8" not in source else int(source["fc8"][0].shape[-1])


def assemble(
    spec: TrainSpec, num_classes: int, preprocess: PreprocessSpec, imagenet_path=None, start_path=None
) -> Assembly:
    keras.utils.set_random_seed(spec.seed)
    source, stored = _read_start(source_path(spec, imagenet_path, start_path))
    spec.check_classes(num_classes, source_classes(source))
    reinit = set(spec.reinit_layers)
    if source_classes(source) not in (None, num_classes):
        reinit.add("fc8")  # a new set of classes always needs a fresh classifier
    loaded = [] if source is None else [name for name in WEIGHT_LAYERS if name not in reinit]
    if source is not None:
        check_shapes(source, num_classes, loaded)
    model = build_alexnet(
        num_classes,
        spec.dropout_rate,
        preprocess,
        seed=spec.seed,
        dtype_policy=spec.dtype_policy,
        fast_kernels=True,
        initialize=WEIGHT_LAYERS if source is None else reinit,
        start_weights=_start_weights(source, stored, loaded),
    )
    for layer in model.layers:
        layer.trainable = layer.name in spec.train_layers
    prefix_layers, head_layers = split_layers(model, spec.first_trainable)
    if not spec.feature_cache or not any(layer.name in WEIGHT_LAYERS for layer in prefix_layers):
        prefix_layers, head_layers = [], model.layers  # nothing cached: the whole network runs each step
    prefix = chain_model(prefix_layers, (227, 227, 3), "frozen_prefix") if prefix_layers else None
    head = model
    if prefix is not None:  # takes the features as cached: no bfloat16 -> float32 -> bfloat16 per step
        head = chain_model(head_layers, tuple(prefix.output.shape[1:]), "trainable_head", prefix.output.dtype)
    reinit_layers = sorted(reinit, key=WEIGHT_LAYERS.index)
    return Assembly(model, prefix, head, reinit_layers, _prefix_fingerprint(prefix, stored, reinit))


_kept_start: dict[str, dict[str, tuple[tf.Tensor, tf.Tensor]]] = {}  # {fingerprint: {layer: values}}


def keep_start_weights(path: str | Path) -> bool:
    """Keep a fingerprinted weights file's layers but the classifier as this process's start values
    (a worker's warm-up): its first job then finds them, as later jobs do. False, and nothing
    kept, where the file is missing, unreadable or carries no fingerprint: a job reports that."""
    path = Path(path)
    if not path.is_file():  # not installed yet (or an export folder, which has no fingerprint)
        return False
    try:
        source, stored = _read_start(path)
    except (WeightsError, OSError):
        return False
    if stored is None:
        return False
    _start_weights(source, stored, [name for name in WEIGHT_LAYERS if name != "fc8" and name in source])
    return True


def _read_start(path: Path | None) -> tuple[Weights | None, str | None]:
    """The weights at `path` (None for none) and, for a weights file, the fingerprint stored in it."""
    if path is None:
        return None, None
    return read_weights(path), (stored_fingerprint(path) if path.is_file() else None)


def _start_weights(source: Weights | None, stored: str | None, loaded: list[str]) -> dict:
    """The loaded layers' start values. Those of a fingerprinted file are kept as tensors for the
    next run in this process (a worker's next job), whose variables are created sharing them: no
    copy out of the memory-mapped file per job (docs: Performance, what a worker keeps). The kept
    values are never written: TensorFlow copies a
    variable's buffer before the first update writes it while another tensor still holds it.
    """
    if source is None:
        return {}
    if stored is None:
        return {name: source[name] for name in loaded}
    if stored not in _kept_start:
        _kept_start.clear()  # one weights file per process: the old values go first
        _kept_start[stored] = {}
    kept = _kept_start[stored]
    for name in loaded:
        if name not in kept:
            kept[name] = tuple(tf.constant(np.asarray(part, np.float32)) for part in source[name])
    return {name: kept[name] for name in loaded}


def _prefix_fingerprint(prefix: keras.Model | None, stored: str | None, reinit: set[str]) -> str:
    """The prefix's weights, identified: a weights file carries the fingerprint of its content, so
    it and the prefix's layers name them without hashing ~160 MB per job. Exports carry no
    fingerprint (nor do freshly initialised layers): those weights are hashed.
    """
    if prefix is None:
        return ""
    layers = _weight_layers(prefix)
    if stored is None or reinit.intersection(layers):
        return fingerprint([np.asarray(v) for v in prefix.weights])
    return hashlib.sha256(f"{stored}:{','.join(layers)}".encode()).hexdigest()


def _weight_layers(prefix: keras.Model) -> tuple[str, ...]:
    """The names of the prefix's layers that hold weights, in order."""
    return tuple(layer.name for layer in prefix.layers if layer.name in WEIGHT_LAYERS)
