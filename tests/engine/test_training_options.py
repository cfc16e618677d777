"""Each option trains what it says: momentum, the feature cache, precision, early stopping, best epoch."""

from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from model.data.preprocess import PreprocessSpec
from model.exports.export import load_export
from model.exports.weights import apply_weights, read_weights, synthetic_weights, write_synthetic_weights
from model.network.alexnet import build_alexnet
from model.network.layout import WEIGHT_LAYERS
from model.training.assembly import assemble
from model.training.features import FeatureCache
from model.training.loop import _better, train
from model.training.spec import TrainSpec
from tests.engine.test_training import Recorder, exported


def test_sgd_momentum_applies(dataset, weights_file, tmp_path):
    runs = {}
    for momentum in (0.0, 0.9):
        spec = TrainSpec(
            num_epochs=2, batch_size=8, learning_rate=0.01, momentum=momentum, augment_flip=False
        )
        train(
            spec, dataset, tmp_path / str(momentum), imagenet_weights=weights_file, cache_dir=tmp_path / "c"
        )
        runs[momentum] = exported(tmp_path / str(momentum))
    assert not np.allclose(runs[0.0]["fc8"][0], runs[0.9]["fc8"][0], atol=1e-6)


@pytest.mark.parametrize("train_layers", [["fc8"], ["fc7", "fc8"]])
def test_cached_and_uncached_training_are_the_same(dataset, weights_file, tmp_path, train_layers):
    """Dropout on, flips on, two epochs: the cache changes the speed, never the result."""
    runs = {}
    for cached in (True, False):
        recorder = Recorder()
        spec = TrainSpec(
            train_layers=train_layers, num_epochs=2, batch_size=8, learning_rate=0.01, feature_cache=cached
        )
        train(spec, dataset, tmp_path / str(cached), imagenet_weights=weights_file, observer=recorder)
        assert recorder.info.feature_cache == ("cached" if cached else None)
        runs[cached] = ([s.loss for s in recorder.steps], exported(tmp_path / str(cached)))
    # the prefix runs at other batch sizes with and without the cache (256 rows against 8), which
    # oneDNN's AVX2 kernels round differently in the last bits, and there fc6 and fc7 take XLA's
    # product from 64 rows (model/network/dense.py); two epochs grow that to ~1.5e-4 in the losses and
    # 4e-5 of the largest weight
    assert np.allclose(runs[True][0], runs[False][0], rtol=1e-3, atol=1e-5)
    for name in train_layers:
        want, got = runs[False][1][name][0], runs[True][1][name][0]
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max(), name


def test_the_feature_phase_reports_one_total(dataset, weights_file, tmp_path):
    recorder = Recorder()
    train(TrainSpec(num_epochs=1, batch_size=8), dataset, tmp_path / "run", imagenet_weights=weights_file,
          observer=recorder)  # fmt: skip
    totals = {total for _, _, total in recorder.phases}
    assert totals == {26 + 18}  # every image, then the flipped training images
    assert recorder.phases[-1] == ("features", 44, 44)


def test_the_feature_passes_share_batches_and_survive_a_cancel(dataset, weights_file, tmp_path):
    """Plain and flipped images go through the prefix in one stream of batches; what they give
    equals each image's own forward pass. A cancel leaves nothing behind; a pass already stored is
    not computed again."""
    import tensorflow as tf

    from model.training.features import Cancelled

    prefix = assemble(TrainSpec(precision="float32"), 2, dataset.preprocess, weights_file).prefix
    train_rows = dataset.indices("train")
    images = np.asarray(dataset.images)
    cache = FeatureCache(tmp_path / "cache")
    calls = []

    def stop_after_a_batch():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(Cancelled):
        cache.features("k", dataset.images, prefix, train_rows, batch_size=16, should_stop=stop_after_a_batch)
    assert sorted(p.name for p in (tmp_path / "cache" / "k").iterdir()) == ["dataset", "lock"]

    totals = []
    plain, _ = cache.features("k", dataset.images, prefix, None, batch_size=16,
                              progress=lambda done, total: totals.append(total))  # fmt: skip
    plain, flipped = cache.features("k", dataset.images, prefix, train_rows, batch_size=16,
                                    progress=lambda done, total: totals.append(total))  # fmt: skip
    assert set(totals) == {len(images), len(train_rows)}  # the plain pass was not computed again
    want_plain = prefix(tf.constant(images), training=False).numpy()
    want_flipped = prefix(tf.constant(images[train_rows][:, :, ::-1]), training=False).numpy()
    np.testing.assert_allclose(plain, want_plain, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(flipped[train_rows], want_flipped, rtol=1e-5, atol=1e-5)
    assert not np.asarray(flipped)[np.setdiff1d(np.arange(len(images)), train_rows)].any()


def test_a_feature_streams_last_batch_is_padded_to_the_ladder(dataset, weights_file, tmp_path):
    """26 images and 18 flipped ones in batches of 16: the last 12 run as 12 (the ladder of
    `padded_size`), not padded to 16, in the one trace of the stream (a second trace for the last
    batch cost a cold job 70-80 ms on 2 cores); the features are each image's own."""
    prefix = assemble(TrainSpec(precision="float32"), 2, dataset.preprocess, weights_file).prefix
    sizes, traces = [], []

    class Recording:  # the prefix, reporting each batch size it runs and each time it is traced
        output = prefix.output

        def __call__(self, x, training):
            traces.append(x.shape[0])
            seen = tf.numpy_function(lambda n: sizes.append(int(n)) or n, [tf.shape(x)[0]], tf.int32)
            with tf.control_dependencies([seen]):
                return prefix(tf.identity(x), training=training)

    train_rows = dataset.indices("train")
    cache = FeatureCache(tmp_path)
    _, flipped = cache.features("k", dataset.images, Recording(), train_rows, batch_size=16)
    assert (len(dataset.images), len(train_rows)) == (26, 18)
    assert sizes == [16, 16, 12]
    assert traces == [None]
    want = prefix(tf.constant(np.asarray(dataset.images)[train_rows][:, :, ::-1]), training=False).numpy()
    np.testing.assert_allclose(flipped[train_rows], want, rtol=1e-5, atol=1e-5)


def test_the_cache_key_covers_precision_and_preprocessing(dataset, weights_file, tmp_path):
    parts = assemble(TrainSpec(), 2, PreprocessSpec(), weights_file)
    cache = FeatureCache(tmp_path)
    base = dict(policy="float32", preprocess=PreprocessSpec().to_json())
    key = cache.key("data", parts.prefix_fingerprint, "fc6", **base)
    assert key == cache.key("data", parts.prefix_fingerprint, "fc6", **base)
    assert key != cache.key("data", parts.prefix_fingerprint, "fc6", **{**base, "policy": "mixed_float16"})
    center = PreprocessSpec(resize="center_crop").to_json()
    assert key != cache.key("data", parts.prefix_fingerprint, "fc6", **{**base, "preprocess": center})


def test_the_prefix_is_named_by_the_weights_files_own_fingerprint(weights_file, tmp_path, monkeypatch):
    """Hashing the prefix's ~160 MB per job is skipped for a weights file, which stores its hash."""
    first = assemble(TrainSpec(), 2, PreprocessSpec(), weights_file).prefix_fingerprint
    other = write_synthetic_weights(tmp_path / "other.npz", seed=1, num_classes=2)
    assert assemble(TrainSpec(), 2, PreprocessSpec(), other).prefix_fingerprint != first
    shallower = TrainSpec(train_layers=["fc6", "fc7", "fc8"])
    assert assemble(shallower, 2, PreprocessSpec(), weights_file).prefix_fingerprint != first
    monkeypatch.setattr(
        "model.training.assembly.fingerprint", lambda arrays: pytest.fail("the prefix was hashed")
    )
    assert assemble(TrainSpec(), 2, PreprocessSpec(), weights_file).prefix_fingerprint == first


def test_every_run_in_a_process_starts_from_its_own_weights_file(dataset, weights_file, tmp_path):
    """A process keeps the frozen layers' values of its last weights file for its next run, whose
    variables share them: a run's training or an assignment must not reach those values, and a
    run from another file must start from that file's weights."""
    first = assemble(TrainSpec(), 2, PreprocessSpec(), weights_file)
    for variable in first.model.get_layer("fc6").weights:
        variable.assign(tf.zeros_like(variable))
    train(TrainSpec(num_epochs=1, batch_size=8), dataset, tmp_path / "run", imagenet_weights=weights_file)
    other = write_synthetic_weights(tmp_path / "other.npz", seed=1, num_classes=2)
    for path in (weights_file, other, weights_file):
        model = assemble(TrainSpec(), 2, PreprocessSpec(), path).model
        expected = read_weights(path)
        for name in WEIGHT_LAYERS[:-1]:  # fc8 starts afresh for two classes
            for variable, value in zip(model.get_layer(name).weights, expected[name]):
                np.testing.assert_array_equal(variable.numpy(), value, err_msg=f"{name} from {path.name}")


def test_the_early_stop_decision_survives_a_crash(dataset, weights_file, tmp_path):
    class CrashInTest(Recorder):
        def on_test(self, report):
            raise RuntimeError("worker died during the test evaluation")

    spec = TrainSpec(num_epochs=6, batch_size=8, learning_rate=1e-12, early_stopping_patience=1)
    first = CrashInTest()
    with pytest.raises(RuntimeError, match="worker died"):
        train(spec, dataset, tmp_path / "run", imagenet_weights=weights_file, observer=first)
    assert len(first.epochs) == 2
    again = Recorder()
    result = train(spec, dataset, tmp_path / "run", imagenet_weights=weights_file, observer=again)
    assert again.steps == [] and result.stopped_early and result.epochs_completed == 2
    assert (tmp_path / "run" / "export" / "saved_model").is_dir()


def test_best_epoch_ties_go_to_the_lower_loss():
    state = {"best_epoch": 1, "best_val_accuracy": 0.75, "best_val_loss": 0.5}
    assert _better(SimpleNamespace(accuracy=0.75, loss=0.4), state)
    assert not _better(SimpleNamespace(accuracy=0.75, loss=0.6), state)
    assert _better(SimpleNamespace(accuracy=0.8, loss=9.0), state)
    assert not _better(SimpleNamespace(accuracy=0.7, loss=0.1), state)


@pytest.mark.parametrize("fast_kernels", [False, True])
def test_mixed_precision_keeps_lrn_and_normalization_in_float32_on_real_activations(dataset, fast_kernels):
    """He-scaled conv1 on raw pixels: activations of several hundred, as in the real network."""
    weights = synthetic_weights(seed=5, num_classes=2)
    weights["conv1"] = (weights["conv1"][0] * 64, weights["conv1"][1])  # undo the test file's damping
    full = build_alexnet(2)
    mixed = build_alexnet(2, dtype_policy="mixed_float16", fast_kernels=fast_kernels)
    for model in (full, mixed):
        apply_weights(model, weights, WEIGHT_LAYERS)
    for name in ("preprocess", "lrn1", "lrn2"):  # fused, they take float16 and compute in float32
        assert mixed.get_layer(name).compute_dtype == ("float16" if fast_kernels else "float32"), name
    images = np.asarray(dataset.images[:8])
    conv1 = build_probe(full, "conv1")(images).numpy()
    assert conv1.max() > 256  # float16 squares of these overflow
    want, got = full(images).numpy(), mixed(images).numpy()
    assert np.abs(got - want).max() < 2e-2 * np.abs(want).max()
    assert (got.argmax(1) == want.argmax(1)).all()


def build_probe(model, layer):
    return keras.Model(model.input, model.get_layer(layer).output)


@pytest.mark.parametrize("precision", ["bfloat16", "float32"])
def test_a_run_exports_a_portable_float32_graph(dataset, weights_file, tmp_path, precision):
    """Training computes with fast kernels (fused LRN, XLA); the export has plain, portable ops."""
    spec = TrainSpec(num_epochs=1, batch_size=8, precision=precision)
    train(spec, dataset, tmp_path / "run", imagenet_weights=weights_file)
    ops, compiled = saved_graph_ops(tmp_path / "run" / "export")
    assert "LRN" in ops and not compiled
    trained = exported(tmp_path / "run")
    reference = build_alexnet(2)
    apply_weights(reference, trained, WEIGHT_LAYERS)
    images = np.asarray(dataset.images[:6])
    logits = reference(images).numpy()
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    served = load_export(tmp_path / "run" / "export").forward(images)
    assert np.allclose(served, expected, atol=1e-5)  # float16 serving would differ by ~1e-3
    assert read_weights(tmp_path / "run" / "export")["fc7"][0].dtype == np.float32


def saved_graph_ops(export_dir) -> tuple[set[str], list[str]]:
    """The op types in an export's graph and its functions, and the functions marked for XLA."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString(
        (export_dir / "saved_model" / "saved_model.pb").read_bytes()
    )
    graph = saved.meta_graphs[0].graph_def
    ops = {node.op for node in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
    compiled = [f.signature.name for f in graph.library.function if f.attr["_XlaMustCompile"].b]
    return ops, compiled


def test_the_feature_cache_evicts_the_least_recently_used_entries(dataset, weights_file, tmp_path):
    cache = tmp_path / "cache"
    train(TrainSpec(num_epochs=1, batch_size=8), dataset, tmp_path / "a", imagenet_weights=weights_file,
          cache_dir=cache)  # fmt: skip
    first = {p.name for p in cache.iterdir()}
    spec = TrainSpec(
        num_epochs=1, batch_size=8, train_layers=["fc6", "fc7", "fc8"]
    )  # another cut: another entry
    train(spec, dataset, tmp_path / "b", imagenet_weights=weights_file, cache_dir=cache, cache_max_bytes=1)
    second = {p.name for p in cache.iterdir()}
    assert len(first) == len(second) == 1 and first != second  # the older entry made room
    assert FeatureCache(cache).remove_dataset(dataset.fingerprint) == list(second)
    assert list(cache.iterdir()) == []


def test_a_bfloat16_run_caches_its_features_in_bfloat16_and_trains_the_same(dataset, weights_file, tmp_path):
    """Half the disk, nothing lost: the features already are bfloat16 when the network computes in it."""
    runs, sizes = {}, {}
    for precision in ("bfloat16", "float32"):
        for cached in (True, False):
            recorder = Recorder()
            spec = TrainSpec(num_epochs=2, batch_size=8, learning_rate=0.01, precision=precision,
                             feature_cache=cached)  # fmt: skip
            run = tmp_path / f"{precision}-{cached}"
            train(spec, dataset, run, imagenet_weights=weights_file, cache_dir=tmp_path / precision,
                  observer=recorder)  # fmt: skip
            assert recorder.info.precision == precision
            runs[precision, cached] = ([s.loss for s in recorder.steps], exported(run))
        sizes[precision] = sum(f.stat().st_size for f in (tmp_path / precision).rglob("plain.npy"))
    assert sizes["bfloat16"] < 0.51 * sizes["float32"]
    losses, weights = runs["bfloat16", True]
    assert np.allclose(losses, runs["bfloat16", False][0], rtol=1e-4, atol=1e-5)
    assert np.allclose(weights["fc8"][0], runs["bfloat16", False][1]["fc8"][0], atol=1e-5)


def test_eviction_skips_entries_another_worker_is_removing(tmp_path):
    import shutil
    import threading

    cache, stop = FeatureCache(tmp_path / "cache", max_bytes=10**9), threading.Event()

    def create_and_remove_entries():
        while not stop.is_set():
            for i in range(20):
                entry = tmp_path / "cache" / f"entry-{i}"
                entry.mkdir(parents=True, exist_ok=True)
                (entry / "lock").touch()
                (entry / "plain.npy").write_bytes(b"x" * 100)
            for i in range(20):
                shutil.rmtree(tmp_path / "cache" / f"entry-{i}", ignore_errors=True)

    churn = threading.Thread(target=create_and_remove_entries)
    churn.start()
    try:
        removed = [cache.evict() for _ in range(1000)]
    finally:
        stop.set()
        churn.join()
    assert removed == [[]] * 1000  # everything fits: nothing evicted, and no error on the way
