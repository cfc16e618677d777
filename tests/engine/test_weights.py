import numpy as np
import pytest

from model.layout import WEIGHT_LAYERS
from model.weights import PRETRAINED_SHAPES, WeightsError, check_shapes, read_weights


def test_generated_file_has_the_bvlc_layout(weights_file):
    weights = read_weights(weights_file)
    assert list(weights) == list(WEIGHT_LAYERS)
    for name, (kernel_shape, bias_shape) in PRETRAINED_SHAPES.items():
        assert weights[name][0].shape == kernel_shape and weights[name][1].shape == bias_shape


def test_caffe_to_tensorflow_layout_is_read_too(tmp_path):
    path = tmp_path / "dict_layout.npy"
    np.save(
        path, {"fc8": {"weights": np.zeros((4096, 1000), np.float32), "biases": np.zeros(1000, np.float32)}}
    )
    weights = read_weights(path)
    assert weights["fc8"][0].shape == (4096, 1000)


def test_missing_file_says_how_to_get_it(tmp_path):
    with pytest.raises(WeightsError, match="finetune download-weights"):
        read_weights(tmp_path / "nope.npy")


def test_unknown_layer_is_named(tmp_path):
    path = tmp_path / "odd.npy"
    np.save(path, {"conv9": [np.zeros(1), np.zeros(1)]})
    with pytest.raises(WeightsError, match="unknown layer 'conv9'"):
        read_weights(path)


def test_wrong_shape_names_layer_and_shapes(tmp_path):
    weights = {"conv2": (np.zeros((5, 5, 96, 256), np.float32), np.zeros(256, np.float32))}
    with pytest.raises(WeightsError, match=r"'conv2'.*\(5, 5, 96, 256\).*\(5, 5, 48, 256\)"):
        check_shapes(weights, 1000, ["conv2"])


def test_not_a_weights_file(tmp_path):
    path = tmp_path / "text.npy"
    path.write_text("hello")
    with pytest.raises(WeightsError, match="cannot read"):
        read_weights(path)
