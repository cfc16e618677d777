"""The optimizers a run trains with: the fused momentum step, and nothing kept after a job."""

import gc
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

from model.training.optimizers import Adam, FusedMomentumSGD, make_optimizer
from model.training.spec import TrainSpec


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_the_fused_momentum_step_is_keras_sgd_to_the_bit(weight_decay):
    """One kernel instead of four element-wise ops, and the same numbers, step after step."""
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(64, 32)).astype(np.float32), rng.normal(size=32).astype(np.float32)]
    grads = [[rng.normal(size=w.shape).astype(np.float32) for w in start] for _ in range(5)]
    trained = []
    for optimizer in (
        keras.optimizers.SGD(0.05, momentum=0.9, weight_decay=weight_decay or None),
        FusedMomentumSGD(0.05, momentum=0.9, weight_decay=weight_decay or None),
    ):
        variables = [keras.Variable(w, name=name) for w, name in zip(start, ("kernel", "bias"))]
        if weight_decay:
            optimizer.exclude_from_weight_decay(var_names=["bias"])
        for step in grads:
            optimizer.apply([tf.constant(g) for g in step], variables)
        trained.append([v.numpy() for v in variables + optimizer.variables])
    keras_sgd, fused = trained
    assert not np.array_equal(keras_sgd[0], start[0])
    assert len(fused) == len(keras_sgd) == 6  # kernel, bias, iterations, rate, two momentums
    for want, got in zip(keras_sgd, fused):
        np.testing.assert_array_equal(got, want)


def test_runs_train_with_the_fused_momentum_step():
    assert type(make_optimizer(TrainSpec(), steps_per_epoch=3)) is FusedMomentumSGD
    assert type(make_optimizer(TrainSpec(optimizer="adam"), steps_per_epoch=3)) is Adam


@pytest.mark.parametrize(
    "spec",
    [TrainSpec(), TrainSpec(momentum=0.0), TrainSpec(optimizer="adam"), TrainSpec(precision="float16")],
    ids=["sgd-momentum", "sgd", "adam", "loss-scaling"],
)
def test_a_traced_step_keeps_nothing_alive_once_its_job_is_done(spec):
    """A worker runs job after job in one process. Keras' optimizers, applied in a `tf.function`,
    kept the traced graph, and every variable it captured, alive for good (135 MB per job)."""

    def one_job():
        variable = keras.Variable(np.ones((4, 4), np.float32), name="kernel")
        optimizer = make_optimizer(spec, steps_per_epoch=3)
        optimizer.build([variable])
        step = tf.function(lambda grad: optimizer.apply([grad], [variable]))
        step(tf.ones((4, 4)))
        assert not np.array_equal(variable.numpy(), np.ones((4, 4)))  # the step did update it
        return weakref.ref(variable.value.handle)

    handle = one_job()
    gc.collect()
    assert handle() is None
