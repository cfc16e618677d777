import gc
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from model.data.dataset import SplitFractions, prepare_dataset
from model.data.preprocess import PreprocessSpec
from model.exports.export import load_export
from model.exports.weights import apply_weights, read_weights, save_weights
from model.network.alexnet import build_alexnet
from model.network.layout import WEIGHT_LAYERS
from model.training.assembly import assemble
from model.training.loop import train
from model.training.reports import TrainingDiverged, TrainingObserver
from model.training.spec import TrainSpec
from testkit.images import class_folder_zip
from testkit.processes import run_python

FAST = dict(num_epochs=2, batch_size=8, learning_rate=0.01)


class Recorder(TrainingObserver):
    def __init__(self, stop_at_step: int | None = None):
        self.steps, self.epochs, self.phases, self.tests, self.info = [], [], [], [], None
        self.stop_at_step = stop_at_step

    def on_start(self, info):
        self.info = info

    def on_phase(self, phase, done, total):
        self.phases.append((phase, done, total))

    def on_step(self, report):
        self.steps.append(report)

    def on_epoch(self, report):
        self.epochs.append(report)

    def on_test(self, report):
        self.tests.append(report)

    def should_stop(self):
        return self.stop_at_step is not None and len(self.steps) >= self.stop_at_step


def exported(run_dir):
    return read_weights(run_dir / "export")


def test_only_the_trained_layers_change_and_no_image_is_dropped(dataset, weights_file, tmp_path):
    recorder = Recorder()
    result = train(
        TrainSpec(**FAST), dataset, tmp_path / "run", imagenet_weights=weights_file, observer=recorder
    )
    assert result.status == "succeeded" and result.epochs_completed == 2
    start, end = read_weights(weights_file), exported(tmp_path / "run")
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6"):
        assert np.array_equal(start[name][0], end[name][0]) and np.array_equal(
            start[name][1], end[name][1]
        ), name
    assert not np.array_equal(start["fc7"][0], end["fc7"][0])
    assert end["fc8"][0].shape == (4096, 2)
    # 18 training images in batches of 8: the last batch of 2 trains too, and all 4 val images count
    assert recorder.info.steps_per_epoch == 3 and len(recorder.steps) == 6
    assert all(sum(map(sum, e.confusion_matrix)) == 4 for e in recorder.epochs)
    assert recorder.info.feature_cache == "cached"
    assert result.test is not None and sum(map(sum, result.test.confusion_matrix)) == 4
    assert {c["class"] for c in recorder.epochs[-1].per_class} == {"cat", "dog"}


def test_convolutional_layers_train_without_the_cache(dataset, weights_file, tmp_path):
    recorder = Recorder()
    spec = TrainSpec(train_layers=["conv1", "fc8"], num_epochs=1, batch_size=16, learning_rate=0.001)
    train(spec, dataset, tmp_path / "run", imagenet_weights=weights_file, observer=recorder)
    start, end = read_weights(weights_file), exported(tmp_path / "run")
    assert recorder.info.feature_cache is None
    assert not np.array_equal(start["conv1"][0], end["conv1"][0])
    for name in ("conv2", "conv3", "conv4", "conv5", "fc6", "fc7"):
        assert np.array_equal(start[name][0], end[name][0]), name


def test_fresh_layers_train_from_their_fresh_start(dataset, weights_file, tmp_path):
    spec = TrainSpec(train_layers=["fc7", "fc8"], reinit_layers=["fc7", "fc8"], num_epochs=1, batch_size=8)
    result = train(spec, dataset, tmp_path / "run", imagenet_weights=weights_file)
    start, end = read_weights(weights_file), exported(tmp_path / "run")
    assert result.status == "succeeded"
    assert not np.array_equal(start["fc7"][0], end["fc7"][0])
    assert np.array_equal(start["fc6"][0], end["fc6"][0])


@pytest.mark.parametrize(
    "options",
    [
        {"optimizer": "momentum"},
        # a schedule reads the optimizer's own step counter, so a resumed run stays on the same curve
        {"lr_schedule": "cosine", "warmup_epochs": 1, "weight_decay": 0.01},
    ],
    ids=["sgd-momentum", "cosine-warmup-decay"],
)
def test_cancel_then_resume_equals_an_uninterrupted_run(dataset, weights_file, tmp_path, options):
    spec = TrainSpec(**{**FAST, "num_epochs": 3}, **options)
    whole = Recorder()
    train(
        spec,
        dataset,
        tmp_path / "whole",
        imagenet_weights=weights_file,
        cache_dir=tmp_path / "cache",
        observer=whole,
    )

    first = Recorder(stop_at_step=4)  # stops in the middle of epoch 2
    result = train(
        spec,
        dataset,
        tmp_path / "split",
        imagenet_weights=weights_file,
        cache_dir=tmp_path / "cache",
        observer=first,
    )
    assert result.status == "cancelled" and len(first.steps) == 4
    second = Recorder()
    result = train(
        spec,
        dataset,
        tmp_path / "split",
        imagenet_weights=weights_file,
        cache_dir=tmp_path / "cache",
        observer=second,
    )
    assert result.status == "succeeded" and second.info.resumed_from_step == 4
    assert [s.step for s in second.steps] == [5, 6, 7, 8, 9]
    losses = [s.loss for s in first.steps + second.steps]
    assert np.allclose(losses, [s.loss for s in whole.steps], rtol=1e-5, atol=1e-6)
    a, b = exported(tmp_path / "whole"), exported(tmp_path / "split")
    for name in ("fc7", "fc8"):
        assert np.allclose(a[name][0], b[name][0], atol=1e-6)
    assert [e.accuracy for e in second.epochs] == [e.accuracy for e in whole.epochs[1:]]


def test_second_job_on_the_same_data_reuses_the_feature_cache(dataset, weights_file, tmp_path):
    first, second = Recorder(), Recorder()
    shared = dict(imagenet_weights=weights_file, cache_dir=tmp_path / "cache")
    train(TrainSpec(num_epochs=1, batch_size=8), dataset, tmp_path / "a", observer=first, **shared)
    train(
        TrainSpec(num_epochs=1, batch_size=8, learning_rate=0.1),
        dataset,
        tmp_path / "b",
        observer=second,
        **shared,
    )
    assert first.phases and not second.phases


def test_a_real_divergence_stops_at_the_first_overflowing_gradient(dataset, weights_file, tmp_path):
    """Features 1000× their usual size and lr 0.1: the loss climbs past 1e33 while still finite,
    and the gradient norm overflows first. The same on every backend (oneDNN on or off)."""
    weights = dict(read_weights(weights_file))
    weights["fc6"] = (np.asarray(weights["fc6"][0]) * 1000, weights["fc6"][1])
    loud = save_weights(weights, tmp_path / "loud.npz")
    spec = TrainSpec(num_epochs=3, batch_size=8, learning_rate=0.1)
    with pytest.raises(
        TrainingDiverged, match=r"epoch 3, step 1: loss [0-9.e+]+, gradient norm inf.*lower learning"
    ):
        train(spec, dataset, tmp_path / "run", imagenet_weights=loud)


def test_non_finite_activations_stop_with_a_clear_error(dataset, weights_file, tmp_path):
    weights = dict(read_weights(weights_file))
    weights["fc6"] = (weights["fc6"][0], np.full(4096, 3e38, np.float32))
    broken = save_weights(weights, tmp_path / "broken.npz")
    with pytest.raises(TrainingDiverged, match="lower learning rate"):
        train(TrainSpec(**FAST), dataset, tmp_path / "run", imagenet_weights=broken)


def test_early_stopping(dataset, weights_file, tmp_path):
    spec = TrainSpec(num_epochs=6, batch_size=8, learning_rate=1e-12, early_stopping_patience=1)
    result = train(spec, dataset, tmp_path / "run", imagenet_weights=weights_file)
    assert result.stopped_early and result.epochs_completed == 2 and result.best_epoch == 1


def test_export_predicts_exactly_as_trained_and_loads_without_this_package(dataset, weights_file, tmp_path):
    train(TrainSpec(num_epochs=1, batch_size=8), dataset, tmp_path / "run", imagenet_weights=weights_file)
    export_dir = tmp_path / "run" / "export"
    predictor = load_export(export_dir)
    rows = dataset.indices("val")
    from_arrays = predictor.predict_arrays(np.asarray(dataset.images[rows]), top_k=2)
    logits = build_and_load(exported(tmp_path / "run"))(
        np.asarray(dataset.images[rows]), training=False
    ).numpy()
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    for ranked, expected in zip(from_arrays, probabilities):
        assert ranked[0]["class_index"] == int(expected.argmax())
        assert ranked[0]["probability"] == pytest.approx(float(expected.max()), abs=1e-5)
    code = (
        "import sys, tensorflow as tf; m = tf.saved_model.load(sys.argv[1]); "
        "p = m.serve(tf.zeros([3, 227, 227, 3], tf.uint8)).numpy(); "
        "assert p.shape == (3, 2) and abs(p.sum() - 3) < 1e-4; assert 'model' not in sys.modules; print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(export_dir / "saved_model")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.stdout.strip() == "ok", out.stderr[-2000:]
    for name in ("labels.json", "preprocess.json", "train_spec.json", "metrics.json"):
        assert (export_dir / name).is_file()


def test_exports_one_after_another_in_a_process_each_hold_their_own_run(
    dataset, weights_file, tmp_path, monkeypatch
):
    """The portable network an export is saved from is kept for the next export of the same shape:
    every export must still hold its own run's weights, and its SavedModel serve them."""
    import tensorflow as tf

    import model.training.loop

    runs = [tmp_path / "slow", tmp_path / "fast"]
    bests = {}  # run → the weights of its best epoch, as training chose them
    trained_weights = model.training.loop._trained_weights

    def kept(network, spec):
        weights = trained_weights(network, spec)
        bests[run_dir] = {name: [np.array(part) for part in parts] for name, parts in weights.items()}
        return weights

    monkeypatch.setattr(model.training.loop, "_trained_weights", kept)
    for run_dir, rate in zip(runs, (1e-4, 1e-2)):
        train(TrainSpec(**{**FAST, "learning_rate": rate}), dataset, run_dir, imagenet_weights=weights_file)
    images = tf.constant(np.asarray(dataset.images[:4]))
    served = []
    for run_dir in runs:
        best = bests[run_dir]
        for name in ("fc7", "fc8"):
            for part, expected in zip(exported(run_dir)[name], best[name]):
                np.testing.assert_array_equal(part, expected)
        loaded = tf.saved_model.load(str(run_dir / "export" / "saved_model"))  # held while it serves
        served.append(loaded.serve(images).numpy())
        logits = build_and_load(exported(run_dir))(np.asarray(dataset.images[:4]), training=False).numpy()
        np.testing.assert_allclose(served[-1], tf.nn.softmax(logits).numpy(), atol=1e-5)
    assert not np.allclose(served[0], served[1], atol=1e-6)


def build_and_load(weights):
    model = build_alexnet(2)
    apply_weights(model, weights, WEIGHT_LAYERS)
    return model


def test_tensorboard_events_hold_scalars_and_histograms(dataset, weights_file, tmp_path):
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    recorder = Recorder()
    train(TrainSpec(num_epochs=2, batch_size=8), dataset, tmp_path / "run", imagenet_weights=weights_file,
          observer=recorder)  # fmt: skip
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard" / "train"), size_guidance={"tensors": 0})
    events.Reload()
    tags = events.Tags()["tensors"]
    assert {"loss", "accuracy", "learning_rate", "epoch_loss", "epoch_accuracy"} <= set(tags)
    assert events.SummaryMetadata("loss").plugin_data.plugin_name == "scalars"
    losses = [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in events.Tensors("loss")]
    assert losses == [(s.step, pytest.approx(s.loss)) for s in recorder.steps]
    epochs = [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in events.Tensors("epoch_accuracy")]
    assert epochs == [(e.epoch, pytest.approx(e.train_accuracy)) for e in recorder.epochs]
    validation = EventAccumulator(str(tmp_path / "run" / "tensorboard" / "validation"))
    validation.Reload()
    assert [e.step for e in validation.Tensors("epoch_loss")] == [1, 2]
    assert any(tag.endswith("/gradient") for tag in tags) and any("fc7" in tag for tag in tags)
    kernel = next(tag for tag in tags if "fc7" in tag and "kernel" in tag and "gradient" not in tag)
    assert events.SummaryMetadata(kernel).plugin_data.plugin_name == "histograms"
    table = tf.make_ndarray(events.Tensors(kernel)[0].tensor_proto)  # [left, right, count] per bucket
    assert table.shape == (30, 3) and table[:, 2].sum() == 8192  # fc7's 16M weights, sampled
    assert (table[:-1, 1] == table[1:, 0]).all() and (table[:, 0] <= table[:, 1]).all()
    gradient = tf.make_ndarray(events.Tensors(f"{kernel}/gradient")[0].tensor_proto)
    assert gradient.shape == (30, 3) and gradient[:, 2].sum() == 8192


@pytest.mark.parametrize("shape", [(4096, 4096), (4096,), (3,), (11, 11, 3, 96), ()])
def test_a_histogram_sample_is_every_kth_value_in_memory_order(shape):
    import tensorflow as tf

    from model.training.summaries import histogram_sample

    values = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    flat = values.reshape(-1)
    want = flat[:: max(1, flat.size // 8192)]
    np.testing.assert_array_equal(histogram_sample(tf.constant(values)).numpy(), want)


def test_continue_from_an_earlier_export(dataset, weights_file, tmp_path):
    train(TrainSpec(num_epochs=1, batch_size=8), dataset, tmp_path / "first", imagenet_weights=weights_file)
    spec = TrainSpec(
        weights=str(tmp_path / "first" / "export"),
        reinit_layers=[],
        train_layers=["fc8"],
        num_epochs=1,
        batch_size=8,
    )
    train(spec, dataset, tmp_path / "second")
    first, second = exported(tmp_path / "first"), exported(tmp_path / "second")
    assert np.array_equal(first["fc7"][0], second["fc7"][0])
    assert not np.array_equal(first["fc8"][0], second["fc8"][0])


def test_random_weights_train_every_layer_and_learn_above_chance(tmp_path):
    """The README's from-scratch recipe (sgd, lr 1e-5, momentum 0.9) on three colour classes."""
    archive = class_folder_zip(tmp_path / "rgb.zip", classes=("red", "green", "blue"), per_class=12)
    rgb = prepare_dataset(archive, tmp_path / "rgb", SplitFractions(0.25, 0.0, seed=1))
    spec = TrainSpec(weights="random", learning_rate=1e-5, num_epochs=2, batch_size=9)
    result = train(spec, rgb, tmp_path / "run")
    assert result.status == "succeeded" and spec.train_layers == list(WEIGHT_LAYERS)
    assert result.best_val_accuracy > 0.6  # chance is 1/3
    fresh = build_alexnet(3, seed=0)
    end = exported(tmp_path / "run")
    assert not np.array_equal(fresh.get_layer("conv1").get_weights()[0], end["conv1"][0])


def test_mixed_precision_and_xla_paths_run_on_a_cpu(dataset, weights_file, tmp_path):
    """The GPU options must not break a CPU-only machine (float16 compute, loss scaling, XLA step)."""
    recorder = Recorder()
    spec = TrainSpec(num_epochs=1, batch_size=8, mixed_precision=True, xla=True)
    result = train(spec, dataset, tmp_path / "run", imagenet_weights=weights_file, observer=recorder)
    assert result.status == "succeeded" and all(np.isfinite(s.loss) for s in recorder.steps)
    assert exported(tmp_path / "run")["fc8"][0].dtype == np.float32
    probabilities = load_export(tmp_path / "run" / "export").predict_arrays(np.asarray(dataset.images[:2]))
    assert abs(sum(p["probability"] for p in probabilities[0]) - 1) < 1e-3


def test_a_process_training_run_after_run_keeps_no_earlier_run(dataset, weights_file, tmp_path):
    """A worker trains job after job in one process. A run's network sits in reference cycles that
    only a full collection frees; each run collects its predecessors before it allocates (they
    held about 200 MB each for fc7+fc8). Automatic collection is off here, so nothing else frees."""
    gc.disable()
    try:
        for run in range(3):
            spec = TrainSpec(**FAST, seed=run)
            train(spec, dataset, tmp_path / str(run), imagenet_weights=weights_file, cache_dir=tmp_path / "c")
        kernels = [o for o in gc.get_objects() if isinstance(o, keras.Variable) and o.path == "fc7/kernel"]
    finally:
        gc.enable()
    assert len(kernels) == 1  # the last run's, which the next one frees


@pytest.mark.parametrize("options", [{}, {"momentum": 0.0}, {"optimizer": "adam"}], ids=str)
def test_runs_in_one_process_start_from_the_files_values(dataset, weights_file, tmp_path, options):
    """A worker keeps the start values of a fingerprinted weights file for its next job, shared
    with the new variables until an update writes them: the updates must not reach the kept ones
    (each optimizer updates through other ops: the fused momentum kernel, assign-add, Adam's)."""
    from model.training import assembly

    spec = TrainSpec(**FAST, **options)
    for run in ("a", "b"):
        train(spec, dataset, tmp_path / run, imagenet_weights=weights_file, cache_dir=tmp_path / "c")
    start = read_weights(weights_file)
    (kept,) = assembly._kept_start.values()
    np.testing.assert_array_equal(kept["fc7"][0].numpy(), start["fc7"][0])
    first, second = exported(tmp_path / "a"), exported(tmp_path / "b")
    assert not np.array_equal(first["fc7"][0], start["fc7"][0])
    np.testing.assert_array_equal(second["fc7"][0], first["fc7"][0])


def test_a_worker_keeps_the_start_weights_before_its_first_job(weights_file, tmp_path):
    """The warm-up keeps every layer of the installed file but fc8 as tensors, where the first
    job's assembly finds them (it copies none again); a file a job would refuse, or one without
    its fingerprint, is left for the job to report."""
    from model.training import assembly

    assembly._kept_start.clear()
    assert not assembly.keep_start_weights(tmp_path / "missing.npz")
    (tmp_path / "pickled.npy").write_bytes(b"\x93NUMPY" + bytes(100))
    assert not assembly.keep_start_weights(tmp_path / "pickled.npy")
    unmarked = save_weights(read_weights(weights_file), tmp_path / "unmarked.npz", fingerprinted=False)
    assert not assembly.keep_start_weights(unmarked)
    assert not assembly._kept_start

    assert assembly.keep_start_weights(weights_file)
    (kept,) = assembly._kept_start.values()
    assert list(kept) == list(WEIGHT_LAYERS[:-1])
    start = read_weights(weights_file)
    np.testing.assert_array_equal(kept["conv2"][0].numpy(), start["conv2"][0])
    before = {name: (kernel.ref(), bias.ref()) for name, (kernel, bias) in kept.items()}
    assemble(TrainSpec(**FAST), 2, PreprocessSpec(), weights_file)
    (after,) = assembly._kept_start.values()
    assert {name: (kernel.ref(), bias.ref()) for name, (kernel, bias) in after.items()} == before


NOTHING_CONVERTED = """
import sys
from pathlib import Path

from tensorflow.python.autograph.pyct import transpiler

converted, transform = [], transpiler.GenericTranspiler.transform


def recording(self, obj, user_context):
    converted.append(f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', obj)}")
    return transform(self, obj, user_context)


transpiler.GenericTranspiler.transform = recording
from model.data.dataset import SplitFractions, prepare_dataset
from model.exports.export import load_export
from model.training.spec import TrainSpec
from model.training.loop import train
from testkit.images import class_folder_zip

work, weights = Path(sys.argv[1]), Path(sys.argv[2])
archive = class_folder_zip(work / "data.zip", per_class=6)
dataset = prepare_dataset(archive, work / "data", SplitFractions(0.2, 0.2, seed=1))
spec = TrainSpec(num_epochs=1, batch_size=4, augment_flip=True, precision="bfloat16")
train(spec, dataset, work / "run", imagenet_weights=weights)
load_export(work / "run" / "export").forward(dataset.images[:2])
print(len(converted))
print("\\n".join(name for name in converted if name.startswith("model.")))
"""


def test_no_engine_function_is_converted_by_autograph(weights_file, tmp_path):
    """The engine's traced functions hold no Python control flow on tensors, so AutoGraph has nothing
    to rewrite; converting them cost a process's first job a noticeable share of its time. A fresh
    process: AutoGraph caches what it converted."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = run_python(NOTHING_CONVERTED, str(tmp_path), str(weights_file), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    count, *engine = done.stdout.split()
    assert int(count) > 0  # the recorder saw TensorFlow's own conversions (the export's signature)
    assert engine == []


def test_float16_gradients_that_overflow_are_skipped_steps_not_a_failure(dataset, tmp_path):
    """Under loss scaling an overflowing float16 gradient is expected: the optimizer skips that
    step and lowers the scale. The epoch's histograms must bin the finite values and count the rest."""
    import tensorflow as tf
    from tensorboard.compat.proto import event_pb2

    from model.exports.weights import synthetic_weights

    weights = synthetic_weights(seed=0)
    kernel, bias = weights["fc6"]
    weights["fc6"] = (kernel, np.full_like(bias, 1000.0))  # fc6 outputs whose fc7 gradient overflows float16
    start = save_weights(weights, tmp_path / "loud.npz")
    spec = TrainSpec(num_epochs=1, batch_size=8, precision="float16")
    result = train(spec, dataset, tmp_path / "run", imagenet_weights=start)
    assert result.status == "succeeded"
    nonfinite = {}
    for path in (tmp_path / "run" / "tensorboard" / "train").glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag.endswith("/gradient/nonfinite"):
                    nonfinite[value.tag] = tf.make_ndarray(value.tensor)
    assert nonfinite and all(count > 0 for count in nonfinite.values()), nonfinite
