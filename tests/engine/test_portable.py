"""ONNX and TFLite exports classify as the SavedModel does, in their own runtimes."""

import json

import numpy as np
import pytest

from model.exports.export import load_export
from model.exports.portable import ExportFormatError, portable_export
from model.training.loop import train
from model.training.spec import TrainSpec


@pytest.fixture(scope="module")
def trained_export(dataset, weights_file, tmp_path_factory):
    run = tmp_path_factory.mktemp("portable") / "run"
    # a small step keeps the synthetic weights' probabilities between 0.7 and 0.9 (not saturated)
    train(
        TrainSpec(num_epochs=1, batch_size=8, learning_rate=1e-6), dataset, run, imagenet_weights=weights_file
    )
    return run / "export"


def images(dataset):
    return np.asarray(dataset.images[: len(dataset.images)])


def assert_same_files(folder, export_dir, model_file):
    assert sorted(p.name for p in folder.iterdir()) == sorted([model_file, "labels.json", "preprocess.json"])
    for name in ("labels.json", "preprocess.json"):
        assert json.loads((folder / name).read_text()) == json.loads((export_dir / name).read_text())


def test_onnx_gives_the_savedmodel_probabilities(trained_export, dataset, tmp_path):
    import onnxruntime

    folder = portable_export(trained_export, "onnx", tmp_path / "onnx")
    assert_same_files(folder, trained_export, "model.onnx")
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]
    batch = images(dataset)
    want = load_export(trained_export).forward(batch)
    assert 0.05 < want.max(1).min() and want.max(1).min() < 0.999  # not saturated: the check means something
    (got,) = session.run(None, {"images": batch})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)


def test_tflite_gives_the_same_top_1_and_probabilities_within_1e_3(trained_export, dataset, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    folder = portable_export(trained_export, "tflite", tmp_path / "tflite")
    assert_same_files(folder, trained_export, "model.tflite")
    batch = images(dataset)
    interpreter = Interpreter(model_path=str(folder / "model.tflite"))
    (source,) = interpreter.get_input_details()
    assert source["dtype"] == np.uint8 and list(source["shape_signature"]) == [-1, 227, 227, 3]
    interpreter.resize_tensor_input(source["index"], batch.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], batch)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    want = load_export(trained_export).forward(batch)
    assert (got.argmax(1) == want.argmax(1)).all()
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_converted_once_and_reused(trained_export, tmp_path):
    folder = portable_export(trained_export, "tflite", tmp_path / "tflite")
    stamp = (folder / "model.tflite").stat().st_mtime_ns
    assert portable_export(trained_export, "tflite", tmp_path / "tflite") == folder
    assert (folder / "model.tflite").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no work folder left behind


def test_bad_format_or_folder_is_a_clear_error(trained_export, tmp_path):
    with pytest.raises(ExportFormatError, match="one of onnx, tflite. Received: 'coreml'"):
        portable_export(trained_export, "coreml", tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="not a finetune export"):
        portable_export(tmp_path, "onnx", tmp_path / "x")


def test_an_export_serves_in_bfloat16_close_to_float32(trained_export, dataset):
    batch = images(dataset)
    full, half = load_export(trained_export), load_export(trained_export, precision="bfloat16")
    assert (full.precision, half.precision) == ("float32", "bfloat16")
    want, got = full.forward(batch), half.forward(batch)
    assert got.dtype == np.float32 and np.allclose(got.sum(1), 1.0, atol=1e-5)
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.9 and np.abs(got - want).max() < 0.05
