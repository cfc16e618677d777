"""The options a sweep varies: schedules with warm-up, weight decay, label smoothing, class weights."""

import numpy as np
import pytest
import tensorflow as tf
from pydantic import ValidationError

from model.training.checkpoint import check_same_run
from model.training.loop import image_losses, train
from model.training.optimizers import make_optimizer
from model.training.schedules import learning_rate_at
from model.training.spec import TrainSpec
from tests.engine.test_training import exported

FAST = dict(num_epochs=3, batch_size=8, learning_rate=0.01)


def test_schedule_shapes():
    steps = np.arange(20)
    constant = learning_rate_at(steps, 1.0, "constant", 4, 20)
    assert np.allclose(constant[:4], [0.25, 0.5, 0.75, 1.0]) and np.all(constant[4:] == 1.0)
    step = learning_rate_at(steps, 1.0, "step", 4, 20)  # 16 steps after warm-up: drops at 8 and 12
    assert np.allclose(step[4:12], 1.0) and np.allclose(step[12:16], 0.1) and np.allclose(step[16:], 0.01)
    cosine = learning_rate_at(steps, 1.0, "cosine", 0, 20)
    assert cosine[0] == 1.0 and np.all(np.diff(cosine) < 0) and cosine[-1] < 0.01
    assert np.isclose(cosine[10], 0.5)


@pytest.mark.parametrize("kind", ["step", "cosine"])
def test_the_optimizer_follows_the_schedule_by_its_own_step_counter(kind):
    spec = TrainSpec(**{**FAST, "num_epochs": 4}, lr_schedule=kind, warmup_epochs=1)
    optimizer = make_optimizer(spec, steps_per_epoch=5)
    optimizer.build([tf.Variable([1.0])])
    for step in (0, 2, 4, 5, 9, 10, 14, 15, 19):
        optimizer.iterations.assign(step)
        want = learning_rate_at(step, 0.01, kind, 5, 20)
        assert float(optimizer.learning_rate) == pytest.approx(float(want), rel=1e-6), step


def test_schedule_and_decay_change_what_is_trained(dataset, weights_file, tmp_path):
    runs = {}
    options = {
        "plain": {},
        "cosine": {"lr_schedule": "cosine"},
        "decay": {"weight_decay": 0.5},
    }
    for name, extra in options.items():
        spec = TrainSpec(**FAST, augment_flip=False, **extra)
        train(spec, dataset, tmp_path / name, imagenet_weights=weights_file, cache_dir=tmp_path / "c")
        runs[name] = exported(tmp_path / name)
    plain = runs["plain"]["fc8"][0]
    assert not np.allclose(plain, runs["cosine"]["fc8"][0], atol=1e-7)
    # decoupled decay pulls kernels towards zero
    assert np.linalg.norm(runs["decay"]["fc8"][0]) < 0.99 * np.linalg.norm(plain)
    assert np.linalg.norm(runs["decay"]["fc7"][0]) < 0.99 * np.linalg.norm(runs["plain"]["fc7"][0])


def test_label_smoothing_and_balanced_class_weights():
    labels = np.array([0, 0, 0, 1])  # three of class 0, one of class 1
    logits = tf.constant([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0], [0.5, -0.5]])
    y = tf.constant([0, 0, 1, 1])
    log_p = tf.nn.log_softmax(logits).numpy()
    plain = -log_p[np.arange(4), y.numpy()]

    same = image_losses(TrainSpec(), labels, 2)(y, logits).numpy()
    assert np.allclose(same, plain, atol=1e-6)

    smoothed = image_losses(TrainSpec(label_smoothing=0.2), labels, 2)(y, logits).numpy()
    targets = np.eye(2)[y.numpy()] * 0.8 + 0.1
    assert np.allclose(smoothed, -(targets * log_p).sum(1), atol=1e-6)

    balanced = image_losses(TrainSpec(class_weight="balanced"), labels, 2)(y, logits).numpy()
    weights = np.array([4 / (2 * 3), 4 / (2 * 1)])  # n / (classes × count)
    assert np.allclose(balanced, plain * weights[y.numpy()], atol=1e-6)


def test_warmup_must_end_before_training_does():
    with pytest.raises(ValidationError, match=r"warmup_epochs \(3\) must be less than num_epochs \(3\)"):
        TrainSpec(num_epochs=3, warmup_epochs=3)
    with pytest.raises(ValidationError, match="label_smoothing"):
        TrainSpec(label_smoothing=1.0)


def test_a_checkpoint_written_before_these_options_existed_still_resumes(tmp_path):
    spec = TrainSpec().model_dump(mode="json")
    older = {k: spec[k] for k in _OLD_FIELDS}
    check_same_run({"spec": older, "dataset": "d"}, spec, "d", tmp_path)  # no mismatch
    with pytest.raises(Exception, match="label_smoothing"):
        check_same_run({"spec": older, "dataset": "d"}, {**spec, "label_smoothing": 0.1}, "d", tmp_path)


_OLD_FIELDS = {
    "train_layers", "reinit_layers", "weights", "optimizer", "learning_rate", "momentum", "num_epochs",
    "batch_size", "dropout_rate", "augment_flip", "early_stopping_patience", "seed", "mixed_precision",
    "xla", "feature_cache",
}  # fmt: skip


def test_concurrent_trials_compute_the_features_once(dataset, weights_file, tmp_path):
    import fcntl
    import threading

    from model.training.assembly import assemble
    from model.training.features import Cancelled, FeatureCache

    parts = assemble(TrainSpec(), 2, dataset.preprocess, weights_file)
    prefix = parts.prefix
    cache = FeatureCache(tmp_path / "cache")
    key = cache.key(dataset.fingerprint, parts.prefix_fingerprint, "fc6", policy="float32", preprocess="p")
    computed, results = [], []

    def trial():
        totals = set()
        plain, _ = cache.features(key, dataset.images, prefix, None, progress=lambda d, t: totals.add(t))
        computed.append(max(totals, default=0))
        results.append(np.asarray(plain))

    threads = [threading.Thread(target=trial) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(computed) == [0, 0, len(dataset.images)]  # one computed, two waited and read
    assert all(np.array_equal(r, results[0]) for r in results)

    # a trial cancelled while another holds the entry stops waiting
    with open(tmp_path / "cache" / key / "lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(Cancelled):
            cache.features(key, dataset.images, prefix, None, should_stop=lambda: True)
