"""Portable exports: the trained network as ONNX or TFLite, beside the label map and preprocessing.

Both take what the SavedModel takes (uint8 RGB images, N×227×227×3, normalized in the graph) and
give softmax probabilities, so any runtime that decodes with `preprocess.json` classifies exactly
as the service does. They are converted from the SavedModel's serving function with the
converters made for it (tf2onnx; TensorFlow's TFLite converter), never by rewriting graphs here.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

FORMATS = ("savedmodel", "onnx", "tflite")
MODEL_FILES = {"onnx": "model.onnx", "tflite": "model.tflite"}
ONNX_OPSET = 17
SHARED_FILES = ("labels.json", "preprocess.json")


class ExportFormatError(ValueError):
    pass


def portable_export(export_dir: Path, fmt: str, out_dir: Path) -> Path:
    """`out_dir` holding model.onnx or model.tflite, labels.json and preprocess.json.

    Converted once: a second call (from any process) waits for the first and reuses its result.
    """
    if fmt not in MODEL_FILES:
        raise ExportFormatError(f"format must be one of {', '.join(MODEL_FILES)}. Received: {fmt!r}")
    export_dir, out_dir = Path(export_dir), Path(out_dir)
    if not (export_dir / "saved_model").is_dir():
        raise FileNotFoundError(f"{export_dir} is not a finetune export (no saved_model/)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with _locked(out_dir.with_name(out_dir.name + ".lock")):
        if (out_dir / MODEL_FILES[fmt]).is_file():
            return out_dir
        work = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
        try:
            _CONVERTERS[fmt](export_dir / "saved_model", work / MODEL_FILES[fmt])
            for name in SHARED_FILES:
                shutil.copy2(export_dir / name, work / name)
            shutil.rmtree(out_dir, ignore_errors=True)
            os.replace(work, out_dir)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return out_dir


@contextmanager
def _locked(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _serving_function(saved_model: Path):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved_model))
    return loaded, loaded.serve.get_concrete_function()


def to_onnx(saved_model: Path, target: Path) -> None:
    """tf2onnx in its large-model mode: the weights skip its optimizer passes, which only slow it."""
    import onnx
    import tensorflow as tf
    import tf2onnx
    from keras.src.export.tf2onnx_lib import patch_tf2onnx
    from onnx.external_data_helper import load_external_data_for_model

    patch_tf2onnx()  # Keras' own fix for tf2onnx under numpy 2, as `model.export(format="onnx")` uses
    loaded, _ = _serving_function(saved_model)
    signature = [tf.TensorSpec([None, 227, 227, 3], tf.uint8, name="images")]
    proto, tensors = tf2onnx.convert.from_function(
        loaded.serve, input_signature=signature, opset=ONNX_OPSET, large_model=True
    )
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        for name, data in tensors.name_to_tensor_data.items():
            Path(scratch, name).write_bytes(data)
        load_external_data_for_model(proto, scratch)
    proto.graph.output[0].name = _rename_output(proto, "probabilities")
    onnx.save_model(proto, str(target))


def _rename_output(proto, name: str) -> str:
    """Call the output `probabilities` (tf2onnx names it after TensorFlow's Identity op)."""
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [name if out == old else out for out in node.output]
    return name


def to_tflite(saved_model: Path, target: Path) -> None:
    import tensorflow as tf

    loaded, function = _serving_function(saved_model)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], loaded)
    target.write_bytes(converter.convert())


_CONVERTERS = {"onnx": to_onnx, "tflite": to_tflite}
