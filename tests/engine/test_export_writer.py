"""Consecutive exports share the frozen layers' bytes, and each still serves its own weights."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from model.data.preprocess import PreprocessSpec
from model.exports import export
from model.exports.export import export_model
from model.exports.export_writer import SavedModelWriter, SharedLayers
from model.exports.weights import apply_weights, read_weights, synthetic_weights
from model.network.alexnet import build_alexnet
from model.network.layout import WEIGHT_LAYERS
from model.training.spec import TrainSpec

FROZEN = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6")
IMAGES = np.random.default_rng(0).integers(0, 256, (3, 227, 227, 3), dtype=np.uint8)


@pytest.fixture
def network(monkeypatch):
    monkeypatch.setattr(export, "_WRITER", SavedModelWriter())  # nothing kept from an earlier test
    return network_of(2)


def network_of(classes: int):
    model = build_alexnet(classes, initialize=())
    apply_weights(model, synthetic_weights(seed=3, num_classes=classes), WEIGHT_LAYERS)
    return model


def train_a_little(model, seed: int) -> None:
    """New values for fc7 and fc8, as a job's training leaves them."""
    rng = np.random.default_rng(seed)
    for name in ("fc7", "fc8"):
        for variable in model.get_layer(name).weights:
            variable.assign(rng.normal(0, 0.01, variable.shape).astype(np.float32))


def save(model, out_dir, shared):
    classes = [f"class {i}" for i in range(model.get_layer("fc8").units)]
    return export_model(model, out_dir, classes, PreprocessSpec(), TrainSpec(), {}, shared=shared)


def frozen_shard(export_dir) -> os.stat_result:
    return os.stat(export_dir / "saved_model" / "variables" / "variables.data-00000-of-00002")


def check_holds(export_dir, model) -> None:
    """The export's checkpoint and its SavedModel's `serve` both give `model`'s weights."""
    stored = read_weights(export_dir)
    for name in WEIGHT_LAYERS:
        for part, variable in zip(stored[name], model.get_layer(name).weights):
            np.testing.assert_array_equal(part, variable.numpy(), err_msg=f"{export_dir.name}: {name}")
    loaded = tf.saved_model.load(str(export_dir / "saved_model"))  # held while it serves
    served = loaded.serve(tf.constant(IMAGES)).numpy()
    expected = tf.nn.softmax(model(IMAGES, training=False)).numpy()
    np.testing.assert_allclose(served, expected, atol=1e-6)


def test_consecutive_exports_link_the_shared_layers_and_hold_their_own(network, tmp_path):
    shared = SharedLayers(FROZEN, "installed weights")
    exports = []
    for job in range(4):
        train_a_little(network, seed=job)
        exports.append(save(network, tmp_path / f"job{job}" / "export", shared))
        check_holds(exports[-1], network)
        if job == 2:  # jobs of another class count in between: their own graph, the same frozen layers
            three = network_of(3)
            for other in range(2):  # the first of a shape is saved whole, the next links
                train_a_little(three, seed=10 + other)
                check_holds(save(three, tmp_path / f"three{other}" / "export", shared), three)
    # the second export writes the shard of the shared layers, the ones after it link that file
    second, third, fourth = (frozen_shard(e) for e in exports[1:])
    assert second.st_ino == third.st_ino == fourth.st_ino and fourth.st_nlink == 4  # and three1's
    assert (exports[3] / "saved_model" / "variables" / "variables.data-00001-of-00002").stat().st_size < (
        second.st_size / 2
    )
    code = (
        "import sys, numpy as np, tensorflow as tf; m = tf.saved_model.load(sys.argv[1]); "
        "np.save(sys.argv[2], m.serve(tf.constant(np.load(sys.argv[3]))).numpy()); "
        "assert 'model' not in sys.modules"
    )
    np.save(tmp_path / "images.npy", IMAGES)
    out = subprocess.run(
        [sys.executable, "-c", code, str(exports[3] / "saved_model"), "served.npy", "images.npy"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    expected = tf.nn.softmax(network(IMAGES, training=False)).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "served.npy"), expected, atol=1e-6)


def test_an_export_writes_its_own_shard_when_the_last_one_is_gone_or_differs(network, tmp_path):
    shared = SharedLayers(FROZEN, "installed weights")
    for job in range(2):
        save(network, tmp_path / f"job{job}" / "export", shared)
    written = frozen_shard(tmp_path / "job1" / "export")
    # the job whose export held the shard was deleted
    os.unlink(tmp_path / "job1" / "export" / "saved_model" / "variables" / "variables.data-00000-of-00002")
    train_a_little(network, seed=5)
    check_holds(save(network, tmp_path / "job2" / "export", shared), network)
    assert frozen_shard(tmp_path / "job2" / "export").st_ino != written.st_ino
    # other frozen values (another weights file): named by another identity, never linked
    conv1 = network.get_layer("conv1")
    conv1.kernel.assign(conv1.kernel * 2.0)
    other = save(network, tmp_path / "job3" / "export", SharedLayers(FROZEN, "other weights"))
    check_holds(other, network)
    assert frozen_shard(other).st_ino != frozen_shard(tmp_path / "job2" / "export").st_ino
    # without shared layers every export is saved whole
    whole = save(network, tmp_path / "job4" / "export", None)
    check_holds(whole, network)
    assert [p.name for p in (whole / "saved_model" / "variables").iterdir() if "data" in p.name] == [
        "variables.data-00000-of-00001"
    ]
