"""Exports and prediction: a folder that holds everything needed to classify exactly as trained.

An export holds `saved_model/` (TensorFlow loads it without this package: uint8 RGB images in,
probabilities out, the in-graph normalization included; its weights are also kept by layer name,
so a later run can continue from them), `labels.json`, `preprocess.json`, `train_spec.json` and
`metrics.json`.
Prediction reads `preprocess.json` and decodes with the same `load_image` that prepared the data.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from model.data.preprocess import MAX_IMAGE_PIXELS, ImageError, PreprocessSpec, load_image
from model.exports.export_writer import SavedModelWriter, SharedLayers


def export_model(
    model,
    out_dir: Path,
    classes: list[str],
    preprocess: PreprocessSpec,
    spec,
    metrics: dict,
    shared: SharedLayers | None = None,
) -> Path:
    """Write `model`'s weights as an export: the SavedModel computes in float32 with portable ops,
    whatever kernels and precision `model` trained with. `shared` names layers whose values the
    next export may share (see `model.exports.export_writer`)."""
    stage_export(model, out_dir, preprocess, shared)
    return finish_export(out_dir, classes, preprocess, spec, metrics)


def stage_export(
    model, out_dir: Path, preprocess: PreprocessSpec, shared: SharedLayers | None = None
) -> Path:
    """The first half of `export_model`: the SavedModel, in the staging folder `<out_dir>.partial`.

    Training stages its export before the test evaluation, and the checkpoint after the last epoch
    then reads the best epoch's weights from it: fc7 and fc8 (67 MB) are written once per job, not
    also to a file of their own.
    """
    out_dir = Path(out_dir)
    work = _staging(out_dir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with _SAVING_LOCK:
        _save_weights_as_saved_model(model, preprocess, work / "saved_model", out_dir / "saved_model", shared)
    return work


def staged_export(out_dir: Path) -> Path | None:
    """The staging folder of `out_dir` if it holds a whole SavedModel (its graph is written last)."""
    work = _staging(Path(out_dir))
    return work if (work / "saved_model" / "saved_model.pb").is_file() else None


def finish_export(out_dir: Path, classes: list[str], preprocess: PreprocessSpec, spec, metrics: dict) -> Path:
    """The second half of `export_model`: the staged SavedModel's companions, then the folder."""
    out_dir = Path(out_dir)
    work = _staging(out_dir)
    (work / "labels.json").write_text(json.dumps(classes, indent=1))
    preprocess.save(work / "preprocess.json")
    (work / "train_spec.json").write_text(spec.model_dump_json(indent=2))
    (work / "metrics.json").write_text(json.dumps(metrics, indent=1))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(work, out_dir)
    return out_dir


def _staging(out_dir: Path) -> Path:
    return out_dir.with_name(out_dir.name + ".partial")


_SAVING_LOCK = threading.Lock()
_WRITER = SavedModelWriter()


def _save_weights_as_saved_model(model, preprocess: PreprocessSpec, directory: Path, settled: Path, shared):
    """TensorFlow saves the first SavedModel of each shape from the portable float32 network, built
    for it and then dropped; the writer reuses its graph for the next exports of that shape (a
    worker's next jobs), which write only the weights, and link the frozen layers' bytes where
    they are the same (docs: Performance, what a worker keeps)."""
    from model.network.layout import WEIGHT_LAYERS

    weights = {name: tuple(model.get_layer(name).weights) for name in WEIGHT_LAYERS}
    shape = (model.get_layer("fc8").units, preprocess.to_json())

    def full_save(target: Path) -> None:
        import tensorflow as tf

        from model.exports.weights import apply_weights
        from model.network.alexnet import build_alexnet

        portable = build_alexnet(shape[0], preprocess=preprocess, dtype_policy="float32", initialize=())
        apply_weights(portable, weights, WEIGHT_LAYERS)
        module = _ServingModule(portable)
        tf.saved_model.save(module, str(target), signatures={"serving_default": module.serve})

    _WRITER.save(shape, weights, directory, settled, shared, full_save)


def _ServingModule(model):
    """A tf.Module with the `serve` function, and the weights under their layer names (stored once).

    The Keras model itself is not an attribute: SavedModel would then save its Keras objects as
    well, which takes longer and which TensorFlow without Keras does not need.
    """
    import tensorflow as tf

    from model.network.layout import WEIGHT_LAYERS

    class ServingModule(tf.Module):
        def __init__(self):
            super().__init__()
            self.layer_weights = {name: list(model.get_layer(name).weights) for name in WEIGHT_LAYERS}

        @tf.function(
            input_signature=[tf.TensorSpec([None, 227, 227, 3], tf.uint8, name="images")], autograph=False
        )
        def serve(self, images):
            return tf.nn.softmax(tf.cast(model(images, training=False), tf.float32))

    return ServingModule()


class Predictor:
    """Classifies batches of images with one network, its label map and its preprocessing."""

    def __init__(
        self,
        forward: Callable[[np.ndarray], np.ndarray],
        classes: list[str],
        preprocess: PreprocessSpec,
        precision: str = "float32",
    ):
        self.forward, self.classes, self.preprocess = forward, classes, preprocess
        self.precision = precision  # what the network computes in

    def predict(
        self, images: Sequence[bytes | np.ndarray], top_k: int = 5, max_pixels: int = MAX_IMAGE_PIXELS
    ) -> list[list[dict]]:
        """Top-k `{label, class_index, probability}` per image; raises `ImageError` naming the image."""
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1. Received: top_k={top_k}")
        batch = (
            np.stack([self._load(i, image, max_pixels) for i, image in enumerate(images)])
            if images
            else np.zeros((0, 227, 227, 3), np.uint8)
        )
        return self.predict_arrays(batch, top_k)

    def predict_arrays(self, batch: np.ndarray, top_k: int = 5) -> list[list[dict]]:
        """Like `predict`, for images already decoded by `load_image` (uint8, N×227×227×3)."""
        if not len(batch):
            return []
        probabilities = np.asarray(self.forward(batch))
        k = min(top_k, probabilities.shape[1])
        best = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        return [
            [{"label": self.classes[c], "class_index": int(c), "probability": float(row[c])} for c in top]
            for row, top in zip(probabilities, best)
        ]

    def _load(self, position: int, image, max_pixels: int) -> np.ndarray:
        try:
            return load_image(image, self.preprocess, max_pixels)
        except ImageError as exc:
            raise ImageError(f"image {position + 1}: {exc}") from exc


def load_export(export_dir: str | os.PathLike, precision: str = "float32") -> Predictor:
    """Load an export for prediction, in `precision` (`auto` is resolved for this machine).

    The export's weights run in the network built with this machine's fast kernels (as training
    computed), not through the SavedModel's portable graph, which is slower, with probabilities
    equal to 1e-6; in half precision the weights are
    held in it, not cast at every call. The SavedModel itself is for TensorFlow without this
    package (and the ONNX and TFLite conversions).
    """
    from model.exports.weights import read_weights
    from model.network.precision import resolve

    export_dir = Path(export_dir)
    if not (export_dir / "saved_model").is_dir():
        raise FileNotFoundError(f"{export_dir} is not a finetune export (no saved_model/)")
    classes = json.loads((export_dir / "labels.json").read_text())
    preprocess = PreprocessSpec.load(export_dir / "preprocess.json")
    return _rebuilt_predictor(read_weights(export_dir), classes, preprocess, resolve(precision))


def imagenet_classes() -> list[str]:
    return json.loads(resources.files("model.exports").joinpath("imagenet_classes.json").read_text())


def imagenet_predictor(weights_path: str | os.PathLike, precision: str = "float32") -> Predictor:
    """The unmodified pretrained network, with the 1000 ImageNet class names."""
    from model.exports.weights import read_weights
    from model.network.precision import resolve

    return _rebuilt_predictor(
        read_weights(weights_path), imagenet_classes(), PreprocessSpec(), resolve(precision)
    )


def _rebuilt_predictor(weights, classes: list[str], preprocess: PreprocessSpec, precision: str) -> Predictor:
    import tensorflow as tf

    from model.exports.weights import check_shapes
    from model.network.alexnet import WEIGHT_LAYERS, build_alexnet
    from model.network.precision import dtype_policy

    check_shapes(weights, len(classes), WEIGHT_LAYERS)
    model = build_alexnet(
        len(classes),
        preprocess=preprocess,
        dtype_policy=dtype_policy(precision),
        fast_kernels=True,
        predict_only=True,
        initialize=(),
        start_weights=weights,
    )
    forward = tf.function(
        lambda x: tf.nn.softmax(tf.cast(model(x, training=False), tf.float32)),
        reduce_retracing=True,
        autograph=False,
    )
    return Predictor(
        lambda batch: forward(tf.constant(batch, dtype=tf.uint8)).numpy(), classes, preprocess, precision
    )
